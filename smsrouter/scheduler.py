"""The scheduler: a server process's own sender and clock, in its event loop.

Hanji's reactor-owned resource, in asyncio terms: the ASGI lifespan starts it in the
server's loop (`manage.py smsrouter_sender` runs the same thing where no ASGI server
does), and it does what must happen without a person, for the duties that
`dispatch.server_duties()` gives it:

* send, at once, the messages that a commit in this process has just queued (the sender
  registers it, so dispatch wakes it with them), so a reply leaves within milliseconds;
* at the next `due_at` it knows of, for retries and scheduled sends;
* every SMSROUTER_SWEEP_EVERY seconds, look for due rows that other processes made or a
  crash left, queue again the sends left "sending", route inbound messages left
  "received" for longer than SMSROUTER_RECOVER_AFTER, and store the long SMS whose parts
  stopped coming (smsrouter.parts);
* run the apps' `@periodic` jobs, each once per period across processes (a lease);
* at its sweeps, write the "scheduler" heartbeat that /ready/ reads (smsrouter.heartbeat).

Several server processes on one database share the work through the sender's claims.
Nothing here blocks the loop: database work goes to Django's database thread, a blocking
periodic job to a thread of its own.
"""

import asyncio
import contextvars
import logging
import time
from collections.abc import Coroutine, Sequence
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.db.models import Min
from django.utils import timezone

from smsrouter import conf, heartbeat, inbound, parts, periodic, recovery, sender
from smsrouter.dispatch import Duties
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Direction, Message, Status

logger = logging.getLogger(__name__)

#: Rounds of sending in flight at once: a hung gateway holds some, not every backend.
ROUNDS = 8
#: Messages kept in memory for the next round; beyond that the sweep finds them.
MAX_PENDING = 10_000
#: How long shutdown waits for the rounds in flight.
GRACE = 5.0


_current: "Scheduler | None" = None


def wake() -> None:
    """Have this process's scheduler, if one runs, look for due rows now: from any thread,
    as when a link it sends through has just come up."""
    if _current is not None:
        _current.wake(due_at=timezone.now())


class Scheduler:
    def __init__(self, duties: Duties) -> None:
        self.duties = duties
        self._pending: list[OutgoingMessage] = []
        self._wake = asyncio.Event()
        self._next_due: float | None = None  # loop time of the next retry or scheduled send
        self._rounds = asyncio.Semaphore(ROUNDS)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeping: asyncio.Task[None] | None = None
        self._jobs = {job.name: job for job in periodic.jobs()} if duties.periodic else {}
        self._turns = dict.fromkeys(self._jobs, 0.0)  # loop time each job may next be tried
        self._running: dict[str, asyncio.Task[None]] = {}
        self._main: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._beats = heartbeat.Beats(heartbeat.SCHEDULER)

    async def start(self) -> None:
        """Start in the running loop, and have this process's commits wake it."""
        self._loop = asyncio.get_running_loop()
        # A context of its own: database work goes to Django's shared thread, never
        # to a request's.
        self._main = self._loop.create_task(self._run(), context=contextvars.Context())
        sender.serve_locally(self.wake)
        global _current
        _current = self

    async def stop(self) -> None:
        """Stop waking, let the rounds in flight finish (for GRACE seconds), then cancel."""
        global _current
        sender.serve_locally(None)
        _current = None
        if self._main is not None:
            self._main.cancel()
            await asyncio.gather(self._main, return_exceptions=True)
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=GRACE)
            for task in late:  # their rows stay "sending": the next sweep re-queues them
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    def wake(self, messages: Sequence[OutgoingMessage] = (), due_at: datetime | None = None) -> None:
        """From any thread: send these committed messages now, or plan for `due_at`."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._woken, list(messages), due_at)

    def _woken(self, messages: list[OutgoingMessage], due_at: datetime | None) -> None:
        if due_at is not None:
            self._plan(due_at)
        elif len(self._pending) < MAX_PENDING:
            self._pending += [m for m in messages if m.backend_name in self.duties.backends]
        self._wake.set()

    def _plan(self, due_at: datetime) -> None:
        at = time.monotonic() + max(0.0, (due_at - timezone.now()).total_seconds())
        if self._next_due is None or at < self._next_due:
            self._next_due = at

    async def _run(self) -> None:
        every = conf.get("SMSROUTER_SWEEP_EVERY")
        next_sweep = 0.0
        while True:
            now = time.monotonic()
            if self._pending:
                pending, self._pending = self._pending, []
                self._spawn(self._round(sender.send(pending)))
            if self._next_due is not None and now >= self._next_due:
                self._next_due = None
                next_sweep = now  # due rows are found the way the sweep finds them
            if now >= next_sweep and (self._sweeping is None or self._sweeping.done()):
                next_sweep = now + every
                self._sweeping = self._spawn(self._sweep())
            for name, turn in self._turns.items():
                if now >= turn and name not in self._running:
                    self._running[name] = self._spawn(self._periodic(name))
            deadline = min(next_sweep, self._next_due or next_sweep, *self._turns.values())
            # Not wait_for(): on 3.11 it can swallow a cancellation that races the event.
            timer = asyncio.get_running_loop().call_later(
                max(0.0, deadline - time.monotonic()), self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()
            self._wake.clear()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _round(self, sending: Coroutine[Any, Any, sender.Round]) -> sender.Round:
        async with self._rounds:
            try:
                done = await sending
            except Exception:  # the rows stay claimed; the sweep queues them again
                logger.exception("a round of sending failed")
                return sender.Round()
        if done.retry_at is not None:
            self._plan(done.retry_at)
            self._wake.set()
        return done

    async def _sweep(self) -> None:
        """Recover what was left behind, send every due row, plan the next one. A sweep
        that does any of it is this scheduler's heartbeat: a hung one beats no more."""
        try:
            if self.duties.sweeps:
                after = conf.get("SMSROUTER_RECOVER_AFTER")
                await sync_to_async(recovery.requeue_interrupted)(after)
                stuck = await sync_to_async(recovery.stuck_inbound)(after)
                for start in range(0, len(stuck), sender.BATCH):
                    await sync_to_async(inbound.route_ids)(stuck[start:start + sender.BATCH])
                await sync_to_async(parts.expire)()
            if (self.duties.sweeps or self.duties.backends) and self._beats.due():
                await sync_to_async(heartbeat.beat)(heartbeat.SCHEDULER)
            if not self.duties.backends:
                return
            while (await self._round(sender.send_due(backend_names=self.duties.backends))).claimed == sender.BATCH:
                pass
            if (upcoming := await sync_to_async(self._upcoming)()) is not None:
                self._plan(upcoming)
        except Exception:
            logger.exception("the sender's sweep failed; the next one tries again")

    def _upcoming(self) -> datetime | None:
        return Message.objects.filter(
            direction=Direction.OUT, status=Status.QUEUED, backend__name__in=self.duties.backends,
            due_at__gt=timezone.now(),
        ).aggregate(first=Min("due_at"))["first"]

    async def _periodic(self, name: str) -> None:
        job = self._jobs[name]
        try:
            next_due = await sync_to_async(periodic.take_turn)(name, job.every)
            if next_due is not None:
                await sync_to_async(periodic.run, thread_sensitive=False)(job.app_path, job.method)
            else:
                next_due = await sync_to_async(periodic.next_turn)(name)
        except Exception:
            logger.exception("periodic job %s failed", name)
            next_due = None
        finally:
            del self._running[name]
        wait = job.every if next_due is None else (next_due - timezone.now()).total_seconds()
        self._turns[name] = time.monotonic() + max(0.0, min(wait, job.every))
        self._wake.set()
