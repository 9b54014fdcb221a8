"""Outgoing messages from a reply or a send() call to the gateway.

Every outgoing message is stored ("queued") before apps may cancel it and before any
gateway sees it, so that a support person can always tell what happened to it.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from functools import partial

from asgiref.sync import sync_to_async
from django.db import DatabaseError, transaction
from django.utils import timezone

from smsrouter import dispatch, gsm, keptloop, recipients, signals, statements
from smsrouter.backends import backends
from smsrouter.exceptions import TemporarySendError
from smsrouter.groupcommit import GroupCommit, together_or_alone
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Direction, Message, Status
from smsrouter.router import Router, drive

logger = logging.getLogger(__name__)


async def deliver(
    messages: Sequence[OutgoingMessage],
    router: Router | None = None,
    due_at: datetime | None = None,
) -> None:
    """Store the messages, run the apps' outgoing phase (some app's is `async def`), and
    hand the rest on for sending."""
    await sync_to_async(store, thread_sensitive=True)(messages, due_at)
    ready = await outgoing_phase(messages, router or Router())
    if ready:
        await dispatch.send(ready, due_at)


def prepare(
    messages: Sequence[OutgoingMessage], router: Router | None = None, due_at: datetime | None = None
) -> list[OutgoingMessage]:
    """Store the messages and run the outgoing phase with a blocking router; those to send."""
    store(messages, due_at)
    return drive(outgoing_phase(messages, router or Router(blocking=True)))


#: One asend() call: text, recipients, backend, at.
SendRequest = tuple[str, recipients.Recipients, str | None, datetime | None]
#: Its messages, and those of them to send (apps may cancel some).
Prepared = tuple[list[OutgoingMessage], list[OutgoingMessage]]


def prepare_sends(requests: list[SendRequest]) -> list[Prepared | Exception]:
    """`prepare()` for concurrent asend() calls: their messages stored with one INSERT (one
    per `at`), then each call's through the outgoing phase with a router of its own.

    A call with a bad recipient gets its ValueError back and stores nothing; a database
    error is raised, for the batch to be tried again call by call.
    """
    made: list[list[OutgoingMessage] | Exception] = []
    for text, to, backend, at in requests:
        try:
            made.append(recipients.outgoing(text, to, backend, at))
        except DatabaseError:
            raise
        except Exception as exc:
            made.append(exc)
    by_due: dict[datetime | None, list[OutgoingMessage]] = defaultdict(list)
    for (*_, at), messages in zip(requests, made, strict=True):
        if not isinstance(messages, Exception):
            by_due[at].extend(messages)
    for at, messages in by_due.items():
        store(messages, at)
    return [
        messages if isinstance(messages, Exception)
        else (messages, drive(outgoing_phase(messages, Router(blocking=True))))
        for messages in made
    ]


def _prepare_one(request: SendRequest) -> Prepared:
    [result] = prepare_sends([request])
    if isinstance(result, Exception):
        raise result
    return result


#: Where concurrent asend() calls' messages wait to be stored together.
sends: GroupCommit[SendRequest, Prepared] = GroupCommit(
    partial(together_or_alone, together=prepare_sends, alone=_prepare_one, what="sends"))


async def outgoing_phase(messages: Sequence[OutgoingMessage], router: Router) -> list[OutgoingMessage]:
    """Run the apps' outgoing phase on stored messages; the ones no app cancelled."""
    cancelled = []
    for msg in messages:
        if (app := await router.outgoing(msg)) is not None:
            msg.status, msg.error = Status.FAILED, f"cancelled by {app}.outgoing()"
            cancelled.append(msg)
    if cancelled:
        if router.blocking:
            save_outcomes(cancelled)
        else:
            await sync_to_async(save_outcomes, thread_sensitive=True)(cancelled)
    return [msg for msg in messages if msg.status == Status.QUEUED]


def store(messages: Sequence[OutgoingMessage], due_at: datetime | None = None) -> None:
    records = [
        Message(
            direction=Direction.OUT,
            backend_id=msg.connection.backend_id,
            connection=msg.connection,
            text=msg.text,
            segments=gsm.segments(msg.text),
            status=Status.QUEUED,
            due_at=due_at,
            in_response_to_id=msg.in_response_to.id if msg.in_response_to else None,
        )
        for msg in messages
    ]
    statements.insert(records)
    for msg, record in zip(messages, records):
        msg.record = record
    signals.changed(records)


async def send_now(messages: Sequence[OutgoingMessage]) -> None:
    """Send in this process: one backend call per backend, then record each outcome."""
    for msg in messages:
        msg.record.attempts += 1
    await send_batches(messages)
    await _outcomes.submit(messages)


def send_now_blocking(messages: Sequence[OutgoingMessage]) -> None:
    """`send_now()` for a caller with no event loop, such as a shell or a sync view.

    Backends whose send never leaves the process run here directly; others need a loop
    for their I/O, which asgiref lends for the call.
    """
    for msg in messages:
        msg.record.attempts += 1
    batches = by_backend(messages)
    if all(backends[name].in_process for name in batches):
        for name, batch in batches.items():
            drive(send_batch(name, batch))
    else:
        keptloop.run(send_batches, messages)
    save_outcomes(messages)


async def send_batches(messages: Sequence[OutgoingMessage]) -> None:
    """One backend call per backend, concurrently; each message's outcome set on it."""
    await asyncio.gather(*(send_batch(name, batch) for name, batch in by_backend(messages).items()))


def by_backend(messages: Sequence[OutgoingMessage]) -> dict[str, list[OutgoingMessage]]:
    batches: dict[str, list[OutgoingMessage]] = defaultdict(list)
    for msg in messages:
        batches[msg.backend_name].append(msg)
    return batches


async def send_batch(backend_name: str, batch: Sequence[OutgoingMessage]) -> None:
    try:
        await backends[backend_name].send(batch)
    except Exception as exc:
        logger.exception("backend %s failed to send messages %s", backend_name, [m.id for m in batch])
        for msg in batch:
            msg.status, msg.error = Status.FAILED, f"{type(exc).__name__}: {exc}"
            msg.retry = isinstance(exc, TemporarySendError)
        return
    for msg in batch:
        if msg.deferred:  # not tried: left for the process holding the link
            msg.status, msg.record.attempts = Status.QUEUED, msg.record.attempts - 1
        elif msg.status != Status.FAILED:
            msg.status = Status.SENT


def _save_outcomes_together(groups: list[Sequence[OutgoingMessage]]) -> list[None | Exception]:
    """Concurrent sends' outcomes in one transaction: mostly one UPDATE for them all."""
    with transaction.atomic():
        save_outcomes([msg for group in groups for msg in group])
    return [None] * len(groups)


_outcomes: GroupCommit[Sequence[OutgoingMessage], None] = GroupCommit(_save_outcomes_together)


def save_outcomes(messages: Sequence[OutgoingMessage]) -> None:
    """Record each message's outcome: one UPDATE per distinct outcome, as most are alike.

    Only rows still "queued" or "sending" change: a delivery report that overtook the
    gateway's answer (Kannel's can) must not be undone. Gateway ids differ per message, so
    messages that carry one are updated row by row.
    """
    now = timezone.now()
    pending = [Status.QUEUED, Status.SENDING]
    alike: dict[tuple[str, str, datetime | None, int], list[int]] = defaultdict(list)
    for msg in messages:
        record = msg.record
        record.status, record.error, record.external_id = msg.status, msg.error, msg.external_id
        record.updated_at = now
        if msg.status == Status.QUEUED:
            record.due_at = msg.due_at
        if msg.external_id is None:
            alike[(msg.status, msg.error, record.due_at, record.attempts)].append(record.pk)
        else:
            statements.update([record.pk], {
                "status": msg.status, "error": msg.error, "external_id": msg.external_id,
                "due_at": record.due_at, "attempts": record.attempts, "updated_at": now,
            }, only_status=pending)
    for (status, error, due_at, attempts), ids in alike.items():
        statements.update(ids, {"status": status, "error": error, "due_at": due_at,
                                "attempts": attempts, "updated_at": now}, only_status=pending)
    signals.changed([msg.record for msg in messages])
