"""Long SMS arrive as parts: each is stored as it comes, the whole text accepted once.

A gateway is told a part was received (an SMPP ESME_ROK, a webhook's 200) only once the
part's row is committed, so a process that dies between parts loses nothing, and the
parts of one text may reach different processes (Vonage's webhooks, any web process).
Once every part of (backend, sender, reference, total) is in, the whole text, joined in
part order, is accepted through smsrouter.inbound in the transaction that marks the
parts used: it is routed exactly once, or not at all and the parts stay unused.

Parts whose text never completes are not lost either: `expire()`, run by every sweep (the
server's scheduler, `smsrouter_sender`, `smsrouter_recover`, Celery beat's), stores
each group older than SMSROUTER_PARTS_TIMEOUT as one message of what arrived, with
fields["parts"] = {"missing": [numbers], "total": N}. Used parts are kept as long again,
so that a gateway's retry of a part already routed is known as one, then purged.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from smsrouter import conf, inbound
from smsrouter.addressbook import get_connection
from smsrouter.api import checked
from smsrouter.backends.base import Inbound
from smsrouter.messages import IncomingMessage
from smsrouter.models import Connection, PendingPart

def receive(backend_name: str, part: Inbound) -> IncomingMessage | None:
    """Store one part of a long SMS; the whole message once this part completes it, else None.

    Blocking: async callers use sync_to_async(thread_sensitive=True). The part is checked
    as `incoming()` checks a message (BadInbound naming the field) before anything is
    written. A part already stored (a retry: the same number, or the same external_id),
    or retried after its text was routed, is not stored again and returns None.

    The sender's Connection row is locked (SELECT ... FOR UPDATE) before the parts are
    counted: on PostgreSQL under READ COMMITTED, two processes each storing one of the
    last two parts would otherwise each count without the other's uncommitted row, and
    neither would see the text complete. Locked, the second counts after the first has
    committed, and sees both.
    """
    backend_name, identity, text, external_id, fields = checked(
        backend_name, part.identity, part.text, part.external_id, part.fields)
    where = part.part
    if where is None or where.total < 2 or not 1 <= where.number <= where.total:
        # Not a part of anything that could complete: a message of its own.
        return inbound.accept_one((backend_name, identity, text, external_id, fields))
    connection = get_connection(backend_name, identity)
    now = timezone.now()
    with transaction.atomic():
        Connection.objects.select_for_update().filter(pk=connection.pk).first()
        group = PendingPart.objects.filter(
            connection=connection, reference=where.reference, total=where.total)
        if _seen(connection, group, where.number, text, external_id, now):
            return None
        PendingPart.objects.create(
            connection=connection, reference=where.reference, total=where.total,
            number=where.number, text=text, external_id=external_id, fields=fields or {},
            received_at=now)
        waiting = list(group.filter(used_at__isnull=True).order_by("number"))
        if len(waiting) < where.total:
            return None
        return _accept(backend_name, identity, waiting, now)


def _seen(connection: Connection, group: Any, number: int, text: str,
          external_id: str | None, now: datetime) -> bool:
    """Whether this part is a retry: of one still waiting, or of one whose text was routed
    within the timeout (an 8-bit reference comes round again, so not for ever)."""
    if external_id is not None and PendingPart.objects.filter(
            connection=connection, external_id=external_id).exists():
        return True
    same = group.filter(number=number)
    if same.filter(used_at__isnull=True).exists():
        return True
    return same.filter(text=text, used_at__gte=now - _timeout()).exists()


def _accept(backend_name: str, identity: str, parts: list[PendingPart], now: datetime,
            total: int | None = None) -> IncomingMessage:
    """Accept the parts' text as one message and mark them used, in the caller's
    transaction; with `total`, some are missing and fields["parts"] says which."""
    fields = _fields(parts)
    if total is not None:
        present = {p.number for p in parts}
        fields["parts"] = {"missing": [n for n in range(1, total + 1) if n not in present],
                           "total": total}
    text = "".join(p.text for p in parts)
    msg = inbound.accept([(backend_name, identity, text, _external_id(parts), fields)])[0]
    PendingPart.objects.filter(pk__in=[p.pk for p in parts]).update(used_at=now)
    return msg


def _external_id(parts: list[PendingPart]) -> str:
    """The whole message's id: its first part's own id, so that a retry of that part
    arriving after its used row is purged is still refused by the message's unique id;
    else one from that part's row, unique however often a reference comes round."""
    first = parts[0]
    return first.external_id or f"parts/{first.pk}"


def _fields(parts: list[PendingPart]) -> dict[str, Any]:
    """The first part's fields; every part's, in order, when they differ (a part an SMPP
    backend could not read as sent keeps its own fields["smpp"])."""
    fields = dict(parts[0].fields)
    if any(p.fields != parts[0].fields for p in parts):
        fields["parts"] = {"fields": [p.fields for p in parts]}
    return fields


def _timeout() -> timedelta:
    return timedelta(seconds=conf.get("SMSROUTER_PARTS_TIMEOUT"))


def expire(now: datetime | None = None) -> int:
    """Store each group whose first part came more than SMSROUTER_PARTS_TIMEOUT ago as one
    message of what arrived, and purge used parts as old; how many it stored.

    Takes `now` so that tests move the clock instead of waiting.
    """
    now = now or timezone.now()
    cutoff = now - _timeout()
    PendingPart.objects.filter(used_at__lt=cutoff).delete()
    groups = (PendingPart.objects.filter(used_at__isnull=True, received_at__lte=cutoff)
              .values_list("connection", "reference", "total").distinct())
    return sum(_expire_group(*group, now=now) for group in list(groups))


def _expire_group(connection_id: int, reference: str, total: int, *, now: datetime) -> int:
    """Store one group as it is, under the sender's lock (a last part may be arriving)."""
    with transaction.atomic():
        connection = (Connection.objects.select_for_update().select_related("backend")
                      .filter(pk=connection_id).first())
        parts = list(PendingPart.objects.filter(
            connection_id=connection_id, reference=reference, total=total,
            used_at__isnull=True).order_by("number"))
        if connection is None or not parts:
            return 0
        _accept(connection.backend.name, connection.identity, parts, now, total=total)
    return 1
