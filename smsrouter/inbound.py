"""An inbound message from the gateway's request to its replies.

The message is stored before it is routed, so that whatever happens to routing, the SMS
that a gateway handed us is never lost.
"""

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

from asgiref.sync import sync_to_async
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from smsrouter import gsm, outbound, signals, statements
from smsrouter.addressbook import get_connection, get_connections
from smsrouter.messages import IncomingMessage, OutgoingMessage
from smsrouter.models import Direction, Message, Status
from smsrouter.router import Router, drive

logger = logging.getLogger(__name__)

#: What a webhook hands in: backend name, identity, text, external id and fields.
Submitted = tuple[str, str, str, str | None, dict[str, Any] | None]


def store(
    backend_name: str,
    identity: str,
    text: str,
    external_id: str | None,
    fields: dict[str, Any] | None,
) -> tuple[IncomingMessage, bool]:
    """Persist the message ("received"); for an external_id seen before, the stored one.

    Returns the message and whether it is new, hence still to be routed.
    """
    connection = get_connection(backend_name, identity)
    if external_id is None:
        return _created(_saved(connection, text, external_id, fields), connection), True
    if (seen := _seen(connection, external_id)) is not None:
        return seen, False
    try:
        with transaction.atomic():
            return _created(_saved(connection, text, external_id, fields), connection), True
    except IntegrityError:
        # A concurrent retry of the same webhook stored it first.
        seen = _seen(connection, external_id)
        if seen is None:
            raise
        return seen, False


def _new(connection: Any, text: str, external_id: str | None, fields: dict[str, Any] | None) -> Message:
    return Message(
        direction=Direction.IN, backend=connection.backend, connection=connection, text=text,
        segments=gsm.segments(text), status=Status.RECEIVED, external_id=external_id,
        fields=fields or {},
    )


def _saved(connection: Any, text: str, external_id: str | None, fields: dict[str, Any] | None) -> Message:
    record = _new(connection, text, external_id, fields)
    statements.insert([record])
    return record


def _created(record: Message, connection: Any) -> IncomingMessage:
    signals.changed([record])
    return IncomingMessage(record, connection)


def _seen(connection: Any, external_id: str) -> IncomingMessage | None:
    record = Message.objects.filter(
        backend=connection.backend, direction=Direction.IN, external_id=external_id
    ).first()
    if record is None:
        return None
    msg = IncomingMessage(record, connection)
    msg.responses = [
        OutgoingMessage(reply.text, connection, in_response_to=msg, record=reply)
        for reply in record.responses.order_by("pk")
    ]
    return msg


def store_many(items: Sequence[Submitted]) -> list[tuple[IncomingMessage, bool]]:
    """`store()` for concurrent requests' messages: one INSERT for all the new ones.

    A retry of a message seen before, in an earlier batch or in this one, is not new. An
    IntegrityError means that another process stored one of them meanwhile; retried one
    by one, that one is then found as seen.
    """
    connections = _connections_of(items)
    seen = _seen_many(items, connections)
    results: list[tuple[IncomingMessage, bool]] = []
    records = []
    for (_, _, text, external_id, fields), connection in zip(items, connections, strict=True):
        key = (connection.backend_id, external_id)
        if external_id is not None and key in seen:
            results.append((seen[key], False))
            continue
        record = _new(connection, text, external_id, fields)
        msg = IncomingMessage(record, connection)
        if external_id is not None:
            seen[key] = msg
        records.append(record)
        results.append((msg, True))
    if records:
        statements.insert(records)
        signals.changed(records)
    return results


def _connections_of(items: Sequence[Submitted]) -> list[Any]:
    """Each item's Connection, looked up (and made) per backend in one go."""
    by_backend: dict[str, list[str]] = defaultdict(list)
    for backend_name, identity, *_ in items:
        by_backend[backend_name].append(identity)
    found = {name: dict(zip(identities, get_connections(name, identities), strict=True))
             for name, identities in by_backend.items()}
    return [found[backend_name][identity] for backend_name, identity, *_ in items]


def _seen_many(items: Sequence[Submitted], connections: Sequence[Any]) -> dict[tuple[int, str], IncomingMessage]:
    wanted: dict[int, dict[str, Any]] = defaultdict(dict)
    for item, connection in zip(items, connections, strict=True):
        if item[3] is not None:
            wanted[connection.backend_id][item[3]] = connection
    seen: dict[tuple[int, str], IncomingMessage] = {}
    for backend_id, by_id in wanted.items():
        for external_id in Message.objects.filter(
            backend_id=backend_id, direction=Direction.IN, external_id__in=list(by_id)
        ).values_list("external_id", flat=True):
            found = _seen(by_id[external_id], external_id)
            if found is not None:
                seen[(backend_id, external_id)] = found
    return seen


def route_many(msgs: Sequence[IncomingMessage], *, isolated: bool = True) -> list[list[OutgoingMessage]]:
    """Route each stored message with a new blocking Router, record the outcomes and store
    the replies; for each message, its replies still to send (apps may cancel some).

    `isolated` runs each message's routing in a savepoint, for messages that share a
    transaction: if a query of an app's fails (which on PostgreSQL dooms the transaction),
    that message's routing alone is rolled back and the message marked failed.
    """
    routers: list[Router | None] = []
    outcomes: list[tuple[str, str]] = []
    for msg in msgs:
        router: Router | None = None
        status, error = Status.HANDLED, ""
        try:
            with transaction.atomic() if isolated else nullcontext():
                router = Router(blocking=True)
                drive(router.incoming(msg))
        except Exception as exc:
            logger.exception("routing message %s failed", msg.id)
            status, error = Status.FAILED, f"{type(exc).__name__}: {exc}"
        routers.append(router)
        outcomes.append((status, error))
    replies = [reply for msg in msgs for reply in msg.responses]
    with transaction.atomic(savepoint=False):  # one commit for the outcomes and the replies
        finish_many(msgs, outcomes)
        outbound.store(replies)
    if not replies:
        return [[] for _ in msgs]
    return [
        drive(outbound.outgoing_phase(msg.responses, router or Router(blocking=True)))
        if msg.responses else []
        for msg, router in zip(msgs, routers, strict=True)
    ]


def route_blocking(msg: IncomingMessage) -> list[OutgoingMessage]:
    """`route_many()` for one message, in the caller's transaction or none."""
    return route_many([msg], isolated=False)[0]


async def route(msg: IncomingMessage) -> None:
    """Route the message with a new Router, record the outcome, and deliver the replies."""
    router: Router | None = None
    status, error = Status.HANDLED, ""
    try:
        router = Router()
        await router.incoming(msg)
    except Exception as exc:
        logger.exception("routing message %s failed", msg.id)
        status, error = Status.FAILED, f"{type(exc).__name__}: {exc}"
    await sync_to_async(_finish, thread_sensitive=True)(msg, status, error)
    if msg.responses:
        await outbound.deliver(msg.responses, router)


def _finish(msg: IncomingMessage, status: str, error: str) -> None:
    finish_many([msg], [(status, error)])


def finish_many(msgs: Sequence[IncomingMessage], outcomes: Sequence[tuple[str, str]]) -> None:
    """Record each message's outcome and fields: one UPDATE per distinct outcome."""
    now = timezone.now()
    alike: dict[tuple[str, str, str], list[Message]] = defaultdict(list)
    for msg, (status, error) in zip(msgs, outcomes, strict=True):
        record = msg.record
        try:  # here, not in the UPDATE: a failed one would doom the caller's transaction
            fields = json.dumps(msg.fields, cls=DjangoJSONEncoder, sort_keys=True)
            record.fields = msg.fields
        except (TypeError, ValueError) as exc:
            logger.error("message %s: fields are not JSON-serializable: %s", msg.id, exc)
            status, error = Status.FAILED, f"fields are not JSON-serializable: {exc}"
            fields = json.dumps(record.fields, cls=DjangoJSONEncoder, sort_keys=True)
        record.status, record.error, record.updated_at = status, error, now
        alike[(status, error, fields)].append(record)
    for (status, error, _), records in alike.items():
        statements.update([record.pk for record in records], {
            "status": status, "error": error, "fields": records[0].fields, "updated_at": now})
    signals.changed([msg.record for msg in msgs])
