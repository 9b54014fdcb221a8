"""/health/ and /ready/ for load balancers, and the heartbeats /ready/ reads: written by
whatever sends in each processing mode."""

import asyncio
import io
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.db import OperationalError, connections
from django.utils import timezone

from smsrouter import health, heartbeat, tasks
from smsrouter.addressbook import get_connection
from smsrouter.dispatch import Duties
from smsrouter.models import Direction, Heartbeat, Message, Status
from smsrouter.scheduler import Scheduler

DEADLINE = 10  # seconds: the longest a test waits, never how long it waits


def test_health_answers_without_the_database(client):
    """No database access is allowed in this test: /health/ needs none."""
    response = client.get("/health/")
    assert (response.status_code, response.json()) == (200, {"alive": True})
    assert "no-cache" in response["Cache-Control"]


@pytest.fixture
def fresh(db, settings):
    """Inline mode, the scheduler's heartbeat just written, nothing in the outbox."""
    settings.SMSROUTER_PROCESSING = "inline"
    heartbeat.beat(heartbeat.SCHEDULER)


def test_ready_names_each_check(client, fresh):
    response = client.get("/ready/")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True and "failing" not in body
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["sender"]["ok"] is True and body["checks"]["sender"]["heartbeat"] == "scheduler"
    assert body["checks"]["outbox_lag"] == {"ok": True, "seconds": 0.0}


def test_not_ready_when_the_database_does_not_answer(client, fresh, monkeypatch):
    def refused(*args, **kwargs):
        raise OperationalError("could not connect to server: Connection refused")

    with monkeypatch.context() as patched:
        patched.setattr(type(connections["default"]), "cursor", refused)
        response = client.get("/ready/")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "checks": {"database": {"ok": False}},
                               "failing": ["database"]}
    assert b"refused" not in response.content  # nothing about the database's whereabouts


def test_not_ready_when_the_senders_heartbeat_is_stale(client, db, settings):
    settings.SMSROUTER_HEARTBEAT_MAX_AGE = 60
    heartbeat.beat(heartbeat.SCHEDULER, now=timezone.now() - timedelta(seconds=61))
    response = client.get("/ready/")
    assert response.status_code == 503
    assert response.json()["failing"] == ["sender"]
    assert response.json()["checks"]["sender"]["age"] >= 61


def test_the_senders_heartbeat_goes_stale_on_a_fake_clock(fresh, settings):
    settings.SMSROUTER_HEARTBEAT_MAX_AGE = 60
    now = timezone.now()
    assert health.readiness(now=now + timedelta(seconds=59))["sender"]["ok"] is True
    assert health.readiness(now=now + timedelta(seconds=61))["sender"]["ok"] is False


def test_not_ready_without_any_heartbeat(client, db):
    response = client.get("/ready/")
    assert response.status_code == 503
    assert response.json()["checks"]["sender"] == {"ok": False, "heartbeat": "scheduler", "age": None}


@pytest.mark.parametrize("mode", ["celery", "channels"])
def test_queued_modes_read_the_sweeps_heartbeat(client, db, settings, mode):
    settings.SMSROUTER_PROCESSING = mode
    heartbeat.beat(heartbeat.SCHEDULER)  # a web server's: it sends nothing in these modes
    assert client.get("/ready/").json()["failing"] == ["sender"]
    heartbeat.beat(heartbeat.RECOVER)
    assert client.get("/ready/").status_code == 200


def queued(due_at=None, age: float = 0) -> Message:
    connection = get_connection("httptester-public", "+255700000001")
    row = Message.objects.create(direction=Direction.OUT, backend=connection.backend,
                                 connection=connection, text="hi", status=Status.QUEUED, due_at=due_at)
    Message.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(seconds=age))
    return row


def test_not_ready_when_the_outbox_lags(client, fresh, settings):
    settings.SMSROUTER_READY_MAX_LAG = 30
    now = timezone.now()
    queued(due_at=now - timedelta(seconds=20))
    queued(due_at=now + timedelta(hours=2), age=3600)  # scheduled: not late
    assert client.get("/ready/").status_code == 200
    queued(age=45)  # no due_at: due since it was stored
    response = client.get("/ready/")
    assert response.status_code == 503
    assert response.json()["failing"] == ["outbox_lag"]
    assert 45 <= response.json()["checks"]["outbox_lag"]["seconds"] < 45 + DEADLINE


# Who writes the heartbeats.
def beat_at(name: str):
    return Heartbeat.objects.filter(name=name).values_list("beat_at", flat=True).first()


@pytest.mark.asyncio
async def test_the_servers_scheduler_beats_at_its_sweep(async_db, settings):
    settings.SMSROUTER_PROCESSING = "inline"
    settings.SMSROUTER_SWEEP_EVERY = 0.05
    scheduler = Scheduler(Duties((), sweeps=True, periodic=False))
    await scheduler.start()
    try:
        async with asyncio.timeout(DEADLINE):
            while await sync_to_async(beat_at)(heartbeat.SCHEDULER) is None:
                await asyncio.sleep(0.01)
    finally:
        await scheduler.stop()
    row = await Heartbeat.objects.aget(name=heartbeat.SCHEDULER)
    assert row.holder == heartbeat.holder()


def test_beats_are_written_at_most_once_an_interval(settings):
    settings.SMSROUTER_HEARTBEAT_EVERY = 3600
    beats = heartbeat.Beats(heartbeat.SCHEDULER)
    assert [beats.due(), beats.due(), beats.due()] == [True, False, False]


@pytest.mark.django_db
def test_the_celery_sweep_task_beats(settings):
    settings.SMSROUTER_PROCESSING = "celery"
    tasks.recover()
    assert beat_at(heartbeat.RECOVER) is not None


@pytest.mark.django_db
def test_smsrouter_recover_beats(settings):
    settings.SMSROUTER_PROCESSING = "channels"
    call_command("smsrouter_recover", stdout=io.StringIO())
    assert beat_at(heartbeat.RECOVER) is not None


@pytest.mark.django_db(transaction=True)
def test_smsrouter_sender_once_beats(settings):
    settings.SMSROUTER_PROCESSING = "inline"
    call_command("smsrouter_sender", "--once", stdout=io.StringIO())
    assert beat_at(heartbeat.SCHEDULER) is not None
