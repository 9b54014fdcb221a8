"""The scheduler a server process runs in its loop: it sends what this process commits at
once, retries and scheduled sends when due, what other processes or a crash left at its
sweep, and each periodic job once per period across processes (a lease)."""

import asyncio
from datetime import timedelta

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.utils import timezone

import smsrouter
from smsrouter import periodic, sender
from smsrouter.dispatch import Duties
from smsrouter.models import Lease, Message
from smsrouter.scheduler import Scheduler
from tests import apps
from tests import backends as test_backends

DEADLINE = 10  # seconds: what a test waits for at most, never what it waits for


@pytest.fixture
def inline(settings):
    test_backends.calls.clear()
    apps.calls.clear()
    settings.SMSROUTER_PROCESSING = "inline"
    settings.INSTALLED_BACKENDS = {"gw": {"ENGINE": "tests.backends.RecordingBackend"},
                                   "down": {"ENGINE": "tests.backends.DownBackend"}}
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_SWEEP_EVERY = 0.05
    settings.SMSROUTER_SEND_BACKOFF = settings.SMSROUTER_SEND_BACKOFF_MAX = 0.05
    return test_backends.calls


@pytest_asyncio.fixture
async def scheduler(inline, async_db):
    running = Scheduler(Duties(("gw", "down"), sweeps=True, periodic=True))
    await running.start()
    yield running
    await running.stop()


async def until(predicate, what):
    """Wait, with a deadline, until `predicate()` (a database read) holds."""
    async with asyncio.timeout(DEADLINE):
        while not await sync_to_async(predicate)():
            await asyncio.sleep(0.01)


def statuses(direction="out"):
    return list(Message.objects.filter(direction=direction).order_by("pk").values_list("status", flat=True))


@pytest.mark.asyncio
async def test_a_reply_committed_in_this_process_is_sent_at_once(scheduler, inline):
    msg = await smsrouter.aincoming("gw", "+1", "echo hi")
    await until(lambda: statuses() == ["sent"], "the reply sent")
    assert inline == [("gw", [("+1", "hi")])] and msg.responses[0].text == "hi"


@pytest.mark.asyncio
async def test_a_failure_a_retry_may_fix_is_retried_when_due(scheduler, inline, settings):
    settings.SMSROUTER_SEND_MAX_ATTEMPTS = 3
    await smsrouter.asend("hello", "+1", backend="down")
    await until(lambda: list(Message.objects.values_list("status", "attempts")) == [("failed", 3)],
                "three attempts, then failed")


@pytest.mark.asyncio
async def test_a_scheduled_send_goes_when_due_without_anyone_waking_the_scheduler(scheduler, inline):
    def stored_elsewhere():  # as another process would: no wake-up reaches this one
        sender.serve_locally(None)
        try:
            return smsrouter.send("later", "+1", backend="gw", at=timezone.now() + timedelta(seconds=0.2))
        finally:
            sender.serve_locally(scheduler.wake)

    await sync_to_async(stored_elsewhere)()
    assert await sync_to_async(statuses)() == ["queued"]
    await until(lambda: statuses() == ["sent"], "the scheduled send sent")


@pytest.mark.asyncio
async def test_the_sweep_takes_up_what_a_crash_left(scheduler, inline, settings):
    settings.SMSROUTER_RECOVER_AFTER = 0

    def crashed():
        sender.serve_locally(None)
        try:
            settings.SMSROUTER_PROCESSING = "celery"  # stored, not routed: as before a crash
            inbound = smsrouter.incoming("gw", "+1", "echo left")
            settings.SMSROUTER_PROCESSING = "inline"
            (interrupted,) = smsrouter.send("half-sent", "+2", backend="gw")
            Message.objects.filter(pk=interrupted.id).update(status="sending", attempts=1)
            return inbound
        finally:
            sender.serve_locally(scheduler.wake)

    await sync_to_async(crashed)()
    await until(lambda: statuses("in") == ["handled"] and statuses() == ["sent", "sent"],
                "the stuck message routed and both sends sent")
    assert sorted(await sync_to_async(lambda: list(Message.objects.filter(
        direction="out").values_list("text", "attempts")))()) == [("half-sent", 2), ("left", 1)]


@pytest.mark.asyncio
async def test_stopping_lets_the_rounds_in_flight_finish(inline, async_db):
    running = Scheduler(Duties(("gw",), sweeps=False, periodic=False))
    await running.start()
    await smsrouter.asend("hello", "+1", backend="gw")
    await running.stop()
    assert await sync_to_async(statuses)() == ["sent"]


@pytest.mark.asyncio
async def test_a_periodic_job_runs_once_per_period_under_two_schedulers(inline, async_db, settings,
                                                                       monkeypatch):
    settings.SMSROUTER_APPS = ["tests.apps.Ticks"]
    apps.ticks.clear()
    turns = []
    take_turn = periodic.take_turn

    def recorded(name, every, now=None):
        now = now or timezone.now()
        if (next_due := take_turn(name, every, now)) is not None:
            turns.append(now)
        return next_due

    monkeypatch.setattr(periodic, "take_turn", recorded)
    first = Scheduler(Duties((), sweeps=False, periodic=True))
    second = Scheduler(Duties((), sweeps=False, periodic=True))
    await first.start()
    await second.start()
    try:
        async with asyncio.timeout(DEADLINE):
            while len(apps.ticks) < 4:
                await asyncio.sleep(0.01)
    finally:
        await first.stop()
        await second.stop()
    assert len(apps.ticks) == len(turns)  # a job runs only on a turn won
    gaps = [(b - a).total_seconds() for a, b in zip(turns, turns[1:])]
    assert min(gaps) >= 0.2 * (1 - periodic.EARLY)


@pytest.mark.django_db
def test_a_lease_gives_each_period_to_one_taker():
    now = timezone.now()
    assert periodic.take_turn("job", 10, now) == now + timedelta(seconds=10)
    assert periodic.take_turn("job", 10, now) is None  # another process, the same instant
    assert periodic.take_turn("job", 10, now + timedelta(seconds=8.5)) is None
    assert periodic.take_turn("job", 10, now + timedelta(seconds=9.5)) is not None  # timers drift
    assert Lease.objects.get().due_at == now + timedelta(seconds=19.5)
    assert periodic.next_turn("job") == now + timedelta(seconds=19.5)
