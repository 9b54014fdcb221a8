"""An inbound message from the gateway's request to its replies in the outbox.

The message is stored before it is routed, so that whatever happens to routing, the SMS
that a gateway handed us is never lost. Then it is routed here (inline mode) or its id
handed to a worker once committed (`smsrouter.dispatch`). Routing is one blocking core,
`route()`, for every caller: the webhook's batch, `incoming()`, a worker, the sweep. Its
outcome and its replies are committed together, and the replies leave through the outbox.

Webhooks go through `together`: the messages of concurrent requests are accepted in one
transaction, with one INSERT for their rows and one for their replies, and each request
is answered once it has committed (see `smsrouter.groupcommit`).
"""

import json
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone, translation

from smsrouter import connectionrow, dispatch, languages, limits, outbox, signals, statements, timings
from smsrouter.addressbook import get_connection, get_connections
from smsrouter.dbhealth import drop_broken_connections
from smsrouter.groupcommit import GroupCommit, together_or_alone
from smsrouter.messages import IncomingMessage, OutgoingMessage
from smsrouter.models import Direction, Message, Status
from smsrouter.router import Router

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
        segments=limits.segments(text), status=Status.RECEIVED, external_id=external_id,
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


def accept(items: list[Submitted], *, batch: bool = True) -> list[IncomingMessage]:
    """Store the messages, then route the new ones here (inline mode) or hand their ids
    to a worker once committed.

    A batch runs in the caller's transaction, each message routed in a savepoint; a
    single message (`batch=False`, `incoming()`) is stored in autocommit first, as the
    caller's code would, so that it is durable before any app sees it.
    """
    stored = store_many(items) if batch else [store(*items[0])]
    new = [msg for msg, is_new in stored if is_new]
    if dispatch.routes_here():
        route(new, isolated=batch)
    else:
        dispatch.accepted([msg.id for msg in new])
    return [msg for msg, _ in stored]


def accept_one(item: Submitted) -> IncomingMessage:
    """`accept()` for one message, in the caller's transaction or none: `incoming()`."""
    return accept([item], batch=False)[0]


def accept_batch(items: list[Submitted]) -> list[IncomingMessage | Exception]:
    """Accept concurrent webhooks' messages in one transaction, or if that fails, one by one."""
    return together_or_alone(items, accept, accept_one, "messages")


#: Where webhooks' messages wait to be accepted together.
together: GroupCommit[Submitted, IncomingMessage] = GroupCommit(accept_batch)


def route(msgs: Sequence[IncomingMessage], *, isolated: bool = True) -> None:
    """Route each stored message with a new Router, then record the outcomes and store the
    replies (through the outbox) in one commit.

    Each message is routed under its sender's language (`smsrouter.languages`), and its
    lazy replies rendered in it before they are stored.

    `isolated` runs each message's routing in a savepoint, for messages that share a
    transaction: if a query of an app's fails (which on PostgreSQL dooms the transaction),
    that message's routing alone is rolled back and the message marked failed.
    """
    routers: list[Router | None] = []
    outcomes: list[tuple[str, str]] = []
    for msg in msgs:
        router: Router | None = None
        status, error = Status.HANDLED, ""
        started = time.perf_counter()
        try:
            with (transaction.atomic() if isolated else nullcontext(),
                  translation.override(languages.language_for(msg.connection))):
                try:
                    router = Router()
                    router.incoming(msg)
                finally:  # lazy replies rendered in the sender's language, routed or not
                    languages.render(msg.responses)
        except Exception as exc:
            logger.exception("routing message %s failed", msg.id)
            status, error = Status.FAILED, limits.scrubbed(f"{type(exc).__name__}: {exc}")
        timings.ROUTING.labels(msg.connection.backend.name).observe(time.perf_counter() - started)
        routers.append(router)
        outcomes.append((status, error))
    with transaction.atomic(savepoint=False):  # one commit for the outcomes and the replies
        finish_many(msgs, outcomes)
        outbox.store([(msg.responses, router or Router())
                      for msg, router in zip(msgs, routers, strict=True) if msg.responses])


def route_ids(message_ids: Sequence[int]) -> int:
    """Route those of these stored inbound messages that still wait; how many it routed.

    For workers and the sweep. The claim and the routing share one transaction: a worker
    killed half-way leaves its messages "received", with none of their effects, for the
    next attempt; a second worker skips the locked rows.
    """
    drop_broken_connections()
    with transaction.atomic():
        records = (
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("connection__backend")
            .filter(pk__in=list(message_ids), direction=Direction.IN, status=Status.RECEIVED)
            .order_by("pk")
        )
        claimed = list(records)
        connectionrow.share_claimed(claimed)
        msgs = [IncomingMessage(record, record.connection) for record in claimed]
        route(msgs)
    return len(msgs)


def finish_many(msgs: Sequence[IncomingMessage], outcomes: Sequence[tuple[str, str]]) -> None:
    """Record each message's outcome and fields: one UPDATE per distinct outcome."""
    now = timezone.now()
    alike: dict[tuple[str, str, str], list[Message]] = defaultdict(list)
    for msg, (status, error) in zip(msgs, outcomes, strict=True):
        record = msg.record
        # Judged here, not by the UPDATE: a failed one would doom the caller's transaction,
        # and SQLite would store what PostgreSQL refuses.
        if problem := limits.fields_problem(msg.fields):
            logger.error("message %s: its fields cannot be stored: %s", msg.id, problem)
            status, error = Status.FAILED, limits.scrubbed(f"fields cannot be stored: {problem}")
        else:
            record.fields = msg.fields
        fields = json.dumps(record.fields, cls=DjangoJSONEncoder, sort_keys=True)
        record.status, record.error, record.updated_at = status, error, now
        alike[(status, error, fields)].append(record)
    for (status, error, _), records in alike.items():
        statements.update([record.pk for record in records], {
            "status": status, "error": error, "fields": records[0].fields, "updated_at": now})
    signals.changed([msg.record for msg in msgs])
