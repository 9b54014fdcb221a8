"""What the admin's "retry" and "cancel" actions do to the outbox, kept apart from the
admin so that each is one guarded UPDATE that can be tested on its own.

Both race the sender: it may claim a queued row, or record an outcome, between the
support person's click and the statement. So each UPDATE names the status it expects
in its WHERE, and a row the sender has just moved on is left as the sender left it.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from smsrouter import dispatch, signals
from smsrouter.backends import backends
from smsrouter.messages import IncomingMessage, OutgoingMessage
from smsrouter.models import Direction, Message, Status


@dataclass(frozen=True)
class Done:
    """How many of the selected rows an action changed, and how many it left alone."""

    changed: int
    skipped: int


def retry_failed(ids: list[int]) -> Done:
    """Queue these failed outgoing messages again, as new: attempts 0, due now, error
    cleared; handed on once committed, as the outbox hands on a new row, so every
    processing mode sends them. Incoming rows, rows in any other status, and rows of a
    backend no longer installed are skipped."""
    now = timezone.now()
    with transaction.atomic():
        retried = list(Message.objects.select_for_update().filter(
            pk__in=ids, direction=Direction.OUT, status=Status.FAILED,
            backend__name__in=list(backends.names()),
        ).order_by("pk").values_list("pk", flat=True))
        Message.objects.filter(pk__in=retried, status=Status.FAILED).update(
            status=Status.QUEUED, attempts=0, due_at=now, error="", sent_at=None,
            updated_at=now)
        records = list(Message.objects.filter(pk__in=retried)
                       .select_related("connection__backend", "backend", "in_response_to")
                       .order_by("pk"))
        signals.changed(records)
        dispatch.queued([_outgoing(record) for record in records])
    return Done(changed=len(records), skipped=len(set(ids)) - len(records))


def cancel_queued(ids: list[int], who: str, at: datetime | None = None) -> Done:
    """Fail those of these outgoing messages that are still queued, with an error naming
    `who` and when. One UPDATE ... WHERE status = 'queued': a row the sender has claimed
    ("sending") goes out as it would have."""
    at = at or timezone.now()
    error = f"cancelled by {who} in the admin at {timezone.localtime(at):%Y-%m-%d %H:%M:%S.%f %Z}"
    with transaction.atomic():
        Message.objects.filter(pk__in=ids, direction=Direction.OUT, status=Status.QUEUED).update(
            status=Status.FAILED, error=error, due_at=None, updated_at=at)
        # The error names this very call (to the microsecond): the rows that carry it are
        # the ones this UPDATE changed, without RETURNING, which not every database has.
        records = list(Message.objects.filter(pk__in=ids, status=Status.FAILED, error=error)
                       .select_related("connection__backend", "backend"))
        signals.changed(records)
    return Done(changed=len(records), skipped=len(set(ids)) - len(records))


def _outgoing(record: Message) -> OutgoingMessage:
    reply_to = record.in_response_to
    return OutgoingMessage(
        record.text, record.connection, record=record,
        in_response_to=IncomingMessage(reply_to, record.connection) if reply_to else None)
