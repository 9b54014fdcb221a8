"""What a worker does with an id it receives: claim the row, then route or send it.

Task queues and channel layers may deliver an id twice, or lose it (`smsrouter_recover`
then finds the row). So workers take ids, not messages, and claim each row before acting:
a message is routed once, and sent by one worker at a time.
"""

import inspect
import logging
import random
from collections.abc import Sequence
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from smsrouter import conf, dispatch, inbound, keptloop, outbound, ratelimit, signals
from smsrouter.backends import backends
from smsrouter.dbhealth import drop_broken_connections
from smsrouter.messages import IncomingMessage, OutgoingMessage
from smsrouter.models import Direction, Message, Status
from smsrouter.router import Router, all_sync, resolve_app

logger = logging.getLogger(__name__)


def route_by_ids(message_ids: Sequence[int]) -> int:
    """Route those of the stored inbound messages that still wait; how many this call routed.

    The claim and the routing share one transaction: a worker killed half-way leaves its
    messages "received", with none of their effects, for the next attempt; a second worker
    skips the locked rows. With blocking apps, all the ids are routed in one transaction,
    each message in a savepoint of its own (as concurrent webhooks are inline), and their
    replies are handed on together once it has committed: one task, one claim and one
    commit per batch rather than per message. With `async def` phases, each message has a
    transaction of its own.
    """
    drop_broken_connections()
    if not all_sync():
        return sum(_route_alone(pk) for pk in message_ids)
    with transaction.atomic():
        msgs = _claim_inbound(message_ids)
        replies = [reply for ready in inbound.route_many(msgs) for reply in ready] if msgs else []
    if replies:
        dispatch.send_blocking(replies)
    return len(msgs)


def route_by_id(message_id: int) -> bool:
    """`route_by_ids()` for one id: whether this call routed it."""
    return route_by_ids([message_id]) == 1


def _route_alone(message_id: int) -> int:
    """Route one message with asynchronous apps, on this thread's kept loop."""
    with transaction.atomic():
        msgs = _claim_inbound([message_id])
        for msg in msgs:
            keptloop.run(inbound.route, msg)
    return len(msgs)


def _claim_inbound(message_ids: Sequence[int]) -> list[IncomingMessage]:
    records = (
        Message.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("connection__backend")
        .filter(pk__in=list(message_ids), direction=Direction.IN, status=Status.RECEIVED)
        .order_by("pk")
    )
    return [IncomingMessage(record, record.connection) for record in records]


def send_by_ids(backend_name: str, message_ids: Sequence[int]) -> int:
    """Send those of the messages that are queued and due; how many this call sent.

    A failure a retry may fix puts the message back in the queue, due after a backoff
    with jitter, until SMSROUTER_SEND_MAX_ATTEMPTS; then it fails with the last error.
    """
    drop_broken_connections()
    messages = _claim(backend_name, message_ids)
    if not messages:
        return 0
    keptloop.run(_send, backend_name, messages)
    retries = _plan_retries(messages)
    outbound.save_outcomes(messages)
    if retries:
        due_at = min(msg.due_at for msg in retries)
        transaction.on_commit(
            lambda: dispatch.send_later(backend_name, [m.id for m in retries], due_at)
        )
    return sum(msg.status == Status.SENT for msg in messages)


def _claim(backend_name: str, message_ids: Sequence[int]) -> list[OutgoingMessage]:
    now = timezone.now()
    with transaction.atomic():
        records = list(
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("connection__backend", "in_response_to")
            .filter(pk__in=message_ids, backend__name=backend_name, direction=Direction.OUT,
                    status=Status.QUEUED)
            .exclude(due_at__gt=now)
            .order_by("pk")
        )
        Message.objects.filter(pk__in=[record.pk for record in records]).update(
            status=Status.SENDING, attempts=F("attempts") + 1, updated_at=now)
        for record in records:
            record.status, record.attempts, record.updated_at = (
                Status.SENDING, record.attempts + 1, now)
        signals.changed(records)
    return [
        OutgoingMessage(
            record.text, record.connection, record=record,
            in_response_to=IncomingMessage(record.in_response_to, record.connection)
            if record.in_response_to else None,
        )
        for record in records
    ]


async def _send(backend_name: str, messages: list[OutgoingMessage]) -> None:
    rate = backends[backend_name].config.get("rate_limit")
    if not rate:
        await outbound.send_batches(messages)
        return
    start = 0
    while start < len(messages):
        granted = await ratelimit.take(backend_name, len(messages) - start, rate)
        await outbound.send_batch(backend_name, messages[start:start + granted])
        start += granted


def _plan_retries(messages: list[OutgoingMessage]) -> list[OutgoingMessage]:
    max_attempts = conf.get("SMSROUTER_SEND_MAX_ATTEMPTS")
    retries = [m for m in messages
               if m.status == Status.FAILED and m.retry and m.record.attempts < max_attempts]
    if retries:
        attempt = max(m.record.attempts for m in retries)
        delay = min(conf.get("SMSROUTER_SEND_BACKOFF_MAX"),
                    conf.get("SMSROUTER_SEND_BACKOFF") * 2 ** (attempt - 1))
        due_at = timezone.now() + timedelta(seconds=delay * random.uniform(0.5, 1.0))
        for msg in retries:
            msg.status, msg.due_at = Status.QUEUED, due_at
        logger.warning("backend %s: %d message(s) will be retried at %s: %s",
                       messages[0].backend_name, len(retries), due_at.isoformat(), retries[0].error)
    return retries


def run_periodic(app_path: str, method: str) -> None:
    """Run an app's periodic method on a fresh instance, as a router would hold it."""
    job = getattr(resolve_app(app_path)(Router()), method)
    if inspect.iscoroutinefunction(job):
        keptloop.run(job)
    else:
        job()
