"""Delivery reports: a gateway's later word on an outgoing message's fate.

Reports arrive out of order and more than once, so a status only ever moves forward:
queued, sending, sent, then delivered or failed. A report for a message we never sent
through that backend changes nothing at all.

A long message sent as parts with an id each (models.SubmittedPart) is reported on part
by part: each part's status moves forward alone, and the message is delivered once every
part is, failed once any part has failed.

A failure the gateway puts down to the number having opted out (a blacklist, DND) marks
the connection opted out, as a STOP from it would, however late the report comes: it
speaks of the number, not of the message.
"""

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from smsrouter import keywords, limits, signals
from smsrouter.backends.base import StatusReport
from smsrouter.exceptions import BadInbound
from smsrouter.models import Direction, Message, Status, SubmittedPart

RANK = {
    Status.QUEUED: 0,
    Status.SENDING: 1,
    Status.SENT: 2,
    Status.DELIVERED: 3,
    Status.FAILED: 3,
}


def apply(backend_name: str, reports: Sequence[StatusReport]) -> int:
    """Record the reports, all or none; the number of messages whose status moved."""
    moved = []
    with transaction.atomic():
        found = [(report, _find(backend_name, report)) for report in reports]
        for report, message in found:
            status = _by_parts(message, report)
            if RANK[status] <= RANK.get(message.status, 0):
                continue
            message.status = status
            message.updated_at = message.reported_at = timezone.now()
            message.error = report.error if status == Status.FAILED else ""
            message.save(update_fields=["status", "error", "updated_at", "reported_at"])
            moved.append(message)
        signals.changed(moved)
        opted_out = {message.connection_id: message.connection
                     for report, message in found if report.opted_out}
        if opted_out:
            keywords.opt_out(list(opted_out.values()))
    return len(moved)


def _by_parts(message: Message, report: StatusReport) -> str:
    """The status the report gives the whole message: its own, unless the message went as
    parts with ids of their own, whose statuses together decide."""
    parts = list(message.submitted_parts.select_for_update())
    if not parts:
        return report.status
    for part in parts:
        if part.external_id == report.external_id and RANK[report.status] > RANK[part.status]:
            part.status = report.status
            part.save(update_fields=["status"])
    statuses = {part.status for part in parts}
    if Status.FAILED in statuses:
        return Status.FAILED
    return Status.DELIVERED if statuses == {Status.DELIVERED} else Status.SENT


def _find(backend_name: str, report: StatusReport) -> Message:
    if report.status not in RANK:
        raise BadInbound("status", f"{report.status!r} is not an outgoing status")
    messages = Message.objects.select_for_update(of=("self",)).select_related(
        "connection__backend").filter(
        backend__name=backend_name, direction=Direction.OUT
    )
    if report.message_id is not None:
        message = messages.filter(pk=report.message_id).first()
    elif report.external_id:
        message = messages.filter(external_id=report.external_id).first() or messages.filter(
            submitted_parts__external_id=report.external_id).first()
    else:
        message = None
    if message is None:
        raise BadInbound(
            report.id_field, f"does not match a message sent through {backend_name!r}"
        )
    return message


def keep_part_ids(message_id: int, ids: list[str]) -> None:
    """Keep each part's id of a message sent as parts, so that each part's receipt finds
    the message (`_by_parts`); those of an earlier attempt are replaced."""
    with transaction.atomic():
        SubmittedPart.objects.filter(message_id=message_id).delete()
        SubmittedPart.objects.bulk_create(
            [SubmittedPart(message_id=message_id, number=number, external_id=external_id)
             for number, external_id in enumerate(ids, start=1)
             if not limits.external_id_problem(external_id)])
