"""The sender: the one way a stored outgoing message reaches its gateway, in every mode.

It claims rows before the network call, durably (status "sending", attempts + 1, the
claim's time in updated_at, committed), so that two senders never send one row at once
and a crash mid-send leaves a row that the sweep finds and re-queues: the attempt that
was made still counts. Then, per backend, one call for the batch (the backend splits it
as its gateway needs, within its `concurrency`), at most `rate_limit` messages a second
across processes. Then each outcome is recorded: "sent" with the gateway's id, "failed"
for good, or "queued" again with `due_at` after an exponential backoff with jitter, until
SMSROUTER_SEND_MAX_ATTEMPTS. A row whose number opted out is not claimed but failed
(smsrouter.statements), and a gateway's word that a number opted out opts it out.

Where it runs is dispatch's business: in a server process's scheduler (inline mode),
in the caller once committed where none runs, in Celery tasks and Channels consumers.
A process whose scheduler sends registers it here (`serve_locally`), so that a commit
in any of its threads wakes it with the new messages.
"""

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.db import transaction
from django.utils import timezone

from smsrouter import conf, keywords, ratelimit, signals, statements, timings
from smsrouter.backends import backends
from smsrouter.backends.base import Outcome
from smsrouter.groupcommit import GroupCommit
from smsrouter.messages import IncomingMessage, OutgoingMessage
from smsrouter.models import OPTED_OUT, Direction, Message, Status

logger = logging.getLogger(__name__)

#: Rows claimed at most per round of send_due().
BATCH = 500

#: Called with (messages, due_at) when this process's scheduler should send them.
Waker = Callable[[Sequence[OutgoingMessage], datetime | None], None]
_local: Waker | None = None


def serve_locally(waker: Waker | None) -> None:
    """Register (or, with None, unregister) the scheduler that sends in this process."""
    global _local
    _local = waker


def serving_locally() -> bool:
    """Whether a scheduler sends in this process."""
    return _local is not None


def wake_local(messages: Sequence[OutgoingMessage], due_at: datetime | None = None) -> bool:
    """Hand just-committed messages to this process's scheduler; False if none runs."""
    if _local is None:
        return False
    _local(messages, due_at)
    return True


@dataclass
class Round:
    """What one round of sending did."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    #: Ids queued again for a retry, by backend, and when the first and the last of them
    #: are due (each has its own jitter).
    retries: dict[str, list[int]] = field(default_factory=dict)
    retry_at: datetime | None = None
    all_due_at: datetime | None = None


async def send(messages: Sequence[OutgoingMessage]) -> Round:
    """Send these stored messages: those still queued and due whose backend can send in
    this process, once claimed here."""
    ready = _ready(messages)
    if not ready:
        return Round()
    return await _deliver(await sync_to_async(_take)(ready))


def send_blocking(messages: Sequence[OutgoingMessage]) -> Round:
    """`send()` for a blocking caller once committed: a shell, a WSGI worker, a test.

    A gateway's I/O needs an event loop, which async_to_sync lends for the call. Where
    nothing leaves the process (the httptester, the tests' locmem backend), the same
    three steps run straight in this thread instead: a loop made for each call cost more
    than routing the message (bench/routing_vs_rapidsms.py, in-process: 294 msg/s with
    it, 640 without, on one machine in one run).
    """
    ready = _ready(messages)
    if not all(backends[msg.backend_name].in_process for msg in ready):
        return async_to_sync(send)(ready)
    claimed = _take(ready)
    results = []
    for name, batch in by_backend(claimed).items():
        with timings.SENDING.labels(name).time():
            outcomes = _in_process(backends[name].send(batch))
        results += zip(batch, outcomes, strict=True)
    return record(results)


def _in_process(sending: Coroutine[Any, Any, list[Outcome]]) -> list[Outcome]:
    """Run an in-process backend's send() to its end without an event loop: it never
    waits on anything (that is what `in_process` promises)."""
    try:
        sending.send(None)
    except StopIteration as done:
        return list(done.value)
    sending.close()
    raise RuntimeError("an in_process backend's send() waited on the event loop")


def _ready(messages: Sequence[OutgoingMessage]) -> list[OutgoingMessage]:
    return [msg for msg in messages if backends[msg.backend_name].ready()]


def _take(ready: list[OutgoingMessage]) -> list[OutgoingMessage]:
    """Those of the messages that are this caller's to send: the ones the outbox stored
    already claimed for it (`dispatch.caller_sends()`), and the queued ones it claims now."""
    born = [msg for msg in ready if msg.record.status == Status.SENDING]
    queued = [msg for msg in ready if msg.record.status == Status.QUEUED]
    won = set(_claim_ids([msg.id for msg in queued])) if queued else set()
    claimed = [msg for msg in queued if msg.id in won]
    for msg in claimed:
        msg.status = msg.record.status = Status.SENDING
        msg.record.attempts += 1
    if len(claimed) < len(queued):
        left = {msg.id: msg for msg in queued if msg.id not in won}
        failed = [left[pk] for pk in statements.fail_opted_out(list(left), timezone.now())]
        for msg in failed:
            msg.status = msg.record.status = Status.FAILED
            msg.error = msg.record.error = OPTED_OUT
        signals.changed([msg.record for msg in failed])
    return born + claimed


def by_backend(messages: Sequence[OutgoingMessage]) -> dict[str, list[OutgoingMessage]]:
    batches: dict[str, list[OutgoingMessage]] = defaultdict(list)
    for msg in messages:
        batches[msg.backend_name].append(msg)
    return batches


async def send_due(
    *, ids: Collection[int] | None = None, backend_names: Collection[str] | None = None,
    limit: int = BATCH,
) -> Round:
    """Claim and send up to `limit` queued rows that are due: among `ids` if given, on
    `backend_names` (default: every backend) that can send in this process."""
    names = [name for name in (backends.names() if backend_names is None else backend_names)
             if backends[name].ready()]
    if not names or (ids is not None and not ids):
        return Round()
    claimed = await sync_to_async(_claim_due)(ids, names, limit)
    return await _deliver(claimed)


def _claim_ids(ids: Sequence[int]) -> list[int]:
    return statements.claim(ids, timezone.now())  # one statement: atomic, and committed


def _claim_due(ids: Collection[int] | None, names: Sequence[str], limit: int) -> list[OutgoingMessage]:
    now = timezone.now()
    with transaction.atomic():
        due = (Message.objects.select_for_update(skip_locked=True, of=("self",))
               .filter(direction=Direction.OUT, status=Status.QUEUED, backend__name__in=names)
               .exclude(due_at__gt=now))
        if ids is not None:
            due = due.filter(pk__in=list(ids))
        wanted = list(due.order_by("pk").values_list("pk", flat=True)[:limit])
        won = statements.claim(wanted, now)
        if len(won) < len(wanted):
            taken = set(won)
            failed = statements.fail_opted_out([pk for pk in wanted if pk not in taken], now)
            signals.changed(list(Message.objects.filter(pk__in=failed)
                                 .select_related("connection__backend", "backend")))
        records = (Message.objects.filter(pk__in=won)
                   .select_related("connection__backend", "in_response_to").order_by("pk"))
        return [
            OutgoingMessage(
                record.text, record.connection, record=record,
                in_response_to=IncomingMessage(record.in_response_to, record.connection)
                if record.in_response_to else None,
            )
            for record in records
        ]


async def _deliver(claimed: list[OutgoingMessage]) -> Round:
    if not claimed:
        return Round()
    batches = by_backend(claimed)
    names = list(batches)
    answers = await asyncio.gather(*(_send_batch(name, batches[name]) for name in names))
    results = [pair for name, outcomes in zip(names, answers, strict=True)
               for pair in zip(batches[name], outcomes, strict=True)]
    return await _outcomes.submit(results)


async def _send_batch(backend_name: str, batch: list[OutgoingMessage]) -> list[Outcome]:
    """The backend's outcomes, as many calls as `rate_limit` allows now and then."""
    backend = backends[backend_name]
    rate = backend.config.get("rate_limit")
    outcomes: list[Outcome] = []
    while len(outcomes) < len(batch):
        start = len(outcomes)
        granted = await ratelimit.take(backend_name, len(batch) - start, rate) if rate else len(batch)
        outcomes += await _call(backend_name, batch[start:start + granted])
    return outcomes


async def _call(backend_name: str, chunk: list[OutgoingMessage]) -> list[Outcome]:
    try:
        with timings.SENDING.labels(backend_name).time():
            outcomes = list(await backends[backend_name].send(chunk))
        if len(outcomes) != len(chunk):
            raise TypeError(f"send() gave {len(outcomes)} outcome(s) for {len(chunk)} message(s)")
    except Exception as exc:
        logger.exception("backend %s failed to send messages %s", backend_name, [m.id for m in chunk])
        return [Outcome.failure(exc)] * len(chunk)
    return outcomes


def record(results: Sequence[tuple[OutgoingMessage, Outcome]]) -> Round:
    """Record each claimed message's outcome: one UPDATE per distinct outcome, as most are
    alike. Only rows still "sending" (or re-queued meanwhile by the sweep) change: a
    delivery report that overtook the gateway's answer (Kannel's can) stands."""
    now = timezone.now()
    max_attempts = conf.get("SMSROUTER_SEND_MAX_ATTEMPTS")
    done = Round(claimed=len(results))
    alike: dict[tuple[str, str, datetime | None], list[int]] = defaultdict(list)
    opted_out: dict[int, OutgoingMessage] = {}
    for msg, outcome in results:
        row = msg.record
        due_at = None
        if outcome.opted_out:
            opted_out[msg.connection.pk] = msg
        if outcome.sent:
            status, done.sent = Status.SENT, done.sent + 1
        elif outcome.temporary and row.attempts < max_attempts:
            status, due_at = Status.QUEUED, now + backoff(row.attempts)
            done.retries.setdefault(msg.backend_name, []).append(msg.id)
            done.retry_at = min(filter(None, (done.retry_at, due_at)))
            done.all_due_at = max(filter(None, (done.all_due_at, due_at)))
        else:
            status, done.failed = Status.FAILED, done.failed + 1
        msg.status, msg.error, msg.external_id = status, outcome.error, outcome.external_id
        row.status, row.error, row.external_id, row.due_at, row.updated_at = (
            status, outcome.error, outcome.external_id, due_at, now)
        sent_at = now if outcome.sent else None
        row.sent_at = sent_at
        if outcome.external_id is None:
            alike[(status, outcome.error, due_at)].append(row.pk)
        else:  # gateway ids differ per message: row by row
            statements.update([row.pk], {"status": status, "error": "", "updated_at": now,
                                         "sent_at": sent_at, "external_id": outcome.external_id},
                              only_status=PENDING)
    for (status, error, due_at), ids in alike.items():
        statements.update(ids, {"status": status, "error": error, "due_at": due_at,
                                "sent_at": now if status == Status.SENT else None,
                                "updated_at": now}, only_status=PENDING)
    if done.retries:
        first = next(msg for msg, outcome in results if msg.status == Status.QUEUED)
        logger.warning("%d message(s) will be retried, the first at %s: %s",
                       sum(map(len, done.retries.values())), done.retry_at.isoformat(), first.error)
    signals.changed([msg.record for msg, _ in results])
    if opted_out:  # as the gateway said (Twilio's 21610): as if each had sent STOP
        keywords.opt_out([msg.connection for msg in opted_out.values()])
    return done


PENDING = (Status.QUEUED, Status.SENDING)


def backoff(attempts: int) -> timedelta:
    """How long a message that failed its `attempts`-th try waits: doubling from
    SMSROUTER_SEND_BACKOFF up to SMSROUTER_SEND_BACKOFF_MAX, less up to half at random so
    that messages failed together do not come back together."""
    delay = min(conf.get("SMSROUTER_SEND_BACKOFF_MAX"),
                conf.get("SMSROUTER_SEND_BACKOFF") * 2 ** (attempts - 1))
    return timedelta(seconds=delay * random.uniform(0.5, 1.0))


def _record_together(groups: list[Sequence[tuple[OutgoingMessage, Outcome]]]) -> list[Round]:
    """Concurrent rounds' outcomes in one transaction."""
    with transaction.atomic():
        return [record(group) for group in groups]


_outcomes: GroupCommit[Sequence[tuple[OutgoingMessage, Outcome]], Round] = GroupCommit(_record_together)
