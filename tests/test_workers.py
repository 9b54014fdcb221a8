"""What workers do with ids: claim, route once, send with retries, recover what was left."""

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

import smsrouter
from smsrouter import dispatch, ratelimit, recovery, workers
from smsrouter.models import Contact, Message
from tests import apps
from tests import backends as test_backends

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(settings):
    """Celery mode, with nothing consuming: messages wait as a worker would find them."""
    test_backends.calls.clear()
    settings.SMSROUTER_PROCESSING = "celery"
    settings.INSTALLED_BACKENDS = {
        "gw": {"ENGINE": "tests.backends.RecordingBackend"},
        "down": {"ENGINE": "tests.backends.DownBackend"},
        "picky": {"ENGINE": "tests.backends.PickyBackend"},
    }
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    settings.SMSROUTER_SEND_MAX_ATTEMPTS = 3
    return test_backends.calls


def statuses(direction):
    return list(Message.objects.filter(direction=direction).order_by("pk").values_list("status", flat=True))


def test_a_queued_mode_stores_and_hands_on_the_id_after_commit(queued, django_capture_on_commit_callbacks):
    """The request only stores; routing waits for a worker."""
    with django_capture_on_commit_callbacks() as callbacks:
        msg = smsrouter.incoming("gw", "+1", "echo hi")
    handed_on = [c for c in callbacks if getattr(c, "func", None) is dispatch.route_later]
    assert [c.args for c in handed_on] == [(msg.id,)] and msg.responses == []
    assert statuses("in") == ["received"]


def test_a_message_is_routed_once_however_often_its_id_arrives(queued):
    msg = smsrouter.incoming("gw", "+1", "echo hi")
    assert workers.route_by_id(msg.id) is True
    assert workers.route_by_id(msg.id) is False
    assert statuses("in") == ["handled"] and statuses("out") == ["queued"]


def test_a_worker_dying_mid_routing_leaves_no_trace_and_the_message_waiting(queued, settings):
    """Claim and routing share a transaction: the app's writes vanish with the worker."""
    settings.SMSROUTER_APPS = ["tests.apps.WritesThenDies"]
    msg = smsrouter.incoming("gw", "+1", "die")
    with pytest.raises(apps.WorkerKilled):
        workers.route_by_id(msg.id)
    assert statuses("in") == ["received"] and not Contact.objects.exists()
    Message.objects.filter(pk=msg.id).update(text="live")
    assert workers.route_by_id(msg.id) is True
    assert list(Contact.objects.values_list("name", flat=True)) == ["from live"]


def test_a_batch_of_webhooks_hands_its_ids_to_workers_in_tasks_of_a_hundred(queued, monkeypatch,
                                                                           django_capture_on_commit_callbacks):
    """One task per hundred messages, not per message: the hand-off costs a worker little."""
    from smsrouter import intake, tasks

    delayed = []
    monkeypatch.setattr(tasks, "route_messages", SimpleNamespace(delay=delayed.append))
    items = [("gw", f"+{n}", f"echo {n}", None, None) for n in range(150)]
    with django_capture_on_commit_callbacks(execute=True):
        ids = [msg.id for msg, _ in intake.accept(items)]
    assert delayed == [ids[:100], ids[100:]]
    assert statuses("in") == ["received"] * 150


def test_a_tasks_ids_are_routed_once_each_and_their_replies_go_on_together(
        queued, settings, monkeypatch, django_capture_on_commit_callbacks):
    """An app's failed query spoils only its own message (on PostgreSQL it would doom the
    batch's transaction but for each message's savepoint)."""
    settings.SMSROUTER_APPS = ["tests.apps.BadQueryOnOops", "smsrouter.contrib.echo.EchoApp"]
    handed_on = []
    monkeypatch.setattr(dispatch, "send_later",
                        lambda backend, ids, due_at=None: handed_on.append((backend, list(ids))))
    ids = [smsrouter.incoming("gw", f"+{n}", text).id
           for n, text in enumerate(["echo a", "oops", "echo b"])]
    with django_capture_on_commit_callbacks(execute=True):
        assert workers.route_by_ids([*ids, ids[0]]) == 3
    assert workers.route_by_ids(ids) == 0
    replies = list(Message.objects.filter(direction="out").order_by("pk").values_list("pk", "text"))
    assert [text for _, text in replies] == ["a", "b"] and statuses("out") == ["queued"] * 2
    assert handed_on == [("gw", [pk for pk, _ in replies])]
    routed = dict(Message.objects.filter(direction="in").values_list("text", "status"))
    assert routed["echo a"] == routed["echo b"] == "handled"
    assert routed["oops"] in ("handled", "failed")


def test_a_worker_dying_mid_batch_leaves_the_whole_batch_waiting(queued, settings):
    settings.SMSROUTER_APPS = ["tests.apps.WritesThenDies"]
    ids = [smsrouter.incoming("gw", "+1", "first").id, smsrouter.incoming("gw", "+2", "die").id]
    with pytest.raises(apps.WorkerKilled):
        workers.route_by_ids(ids)
    assert statuses("in") == ["received", "received"] and statuses("out") == []
    assert not Contact.objects.exists()


def test_a_tasks_messages_with_async_apps_are_routed_each_in_its_own_transaction(queued, settings):
    settings.SMSROUTER_APPS = ["tests.apps.AsyncHandles"]
    ids = [smsrouter.incoming("gw", f"+{n}", f"hi {n}").id for n in range(3)]
    assert workers.route_by_ids([*ids, ids[0]]) == 3
    assert workers.route_by_ids(ids) == 0
    assert statuses("in") == ["handled"] * 3 and statuses("out") == ["queued"] * 3
    assert sorted(Message.objects.filter(direction="out").values_list("text", flat=True)) == [
        "async hi 0", "async hi 1", "async hi 2"]


def test_sending_claims_queued_messages_and_records_the_outcome(queued):
    sent = smsrouter.send("hello", ["+1", "+2"], backend="gw")
    ids = [m.id for m in sent]
    assert workers.send_by_ids("gw", ids) == 2
    assert workers.send_by_ids("gw", ids) == 0
    assert queued == [("gw", [("+1", "hello"), ("+2", "hello")])]
    assert list(Message.objects.values_list("status", "attempts")) == [("sent", 1), ("sent", 1)]


def test_a_temporary_failure_is_retried_with_backoff_then_fails(queued, settings):
    settings.SMSROUTER_SEND_BACKOFF = 10
    (message,) = smsrouter.send("hello", "+1", backend="down")
    before = timezone.now()
    workers.send_by_ids("down", [message.id])
    row = Message.objects.get()
    assert (row.status, row.attempts, row.error) == (
        "queued", 1, "TemporarySendError: gateway answered 503")
    assert before + timedelta(seconds=5) <= row.due_at <= before + timedelta(seconds=11)
    assert workers.send_by_ids("down", [message.id]) == 0  # not due yet: not claimed
    for attempt in (2, 3):
        Message.objects.update(due_at=timezone.now())
        workers.send_by_ids("down", [message.id])
    row = Message.objects.get()
    assert (row.status, row.attempts) == ("failed", 3)


def test_a_permanent_failure_is_not_retried(queued):
    sent = smsrouter.send("hello", ["0700", "+1"], backend="picky")
    workers.send_by_ids("picky", [m.id for m in sent])
    assert list(Message.objects.order_by("pk").values_list("status", "error")) == [
        ("failed", "rejected number"), ("sent", "")]


def test_the_backoff_grows_to_its_cap(queued, settings):
    settings.SMSROUTER_SEND_BACKOFF, settings.SMSROUTER_SEND_BACKOFF_MAX = 10, 15
    settings.SMSROUTER_SEND_MAX_ATTEMPTS = 9
    (message,) = smsrouter.send("hello", "+1", backend="down")
    Message.objects.update(attempts=5)
    before = timezone.now()
    workers.send_by_ids("down", [message.id])
    assert Message.objects.get().due_at <= before + timedelta(seconds=15.5)


def test_a_scheduled_send_waits_until_it_is_due(queued, settings):
    settings.SMSROUTER_PROCESSING = "inline"
    later = timezone.now() + timedelta(hours=1)
    (message,) = smsrouter.send("reminder", "+1", backend="gw", at=later)
    assert (message.status, statuses("out")) == ("queued", ["queued"])
    assert recovery.recover(older_than=300) == {"inbound": 0, "outbound": 0}
    Message.objects.update(due_at=timezone.now() - timedelta(seconds=1))
    assert recovery.recover(older_than=300) == {"inbound": 0, "outbound": 1}
    assert statuses("out") == ["sent"] and queued == [("gw", [("+1", "reminder")])]


def test_a_naive_schedule_is_refused(queued):
    with pytest.raises(ValueError, match="aware datetime"):
        smsrouter.send("x", "+1", backend="gw", at=timezone.now().replace(tzinfo=None))
    assert not Message.objects.exists()


def test_recovery_routes_and_sends_what_was_left_behind(queued, settings):
    """Inline recovery does the work itself: a lost id, a dead sender, a lost send task."""
    stuck_in = smsrouter.incoming("gw", "+1", "echo lost")
    fresh_in = smsrouter.incoming("gw", "+2", "echo fresh")
    (stuck_sending,) = smsrouter.send("was sending", "+3", backend="gw")
    (stuck_queued,) = smsrouter.send("was queued", "+4", backend="gw")
    long_ago = timezone.now() - timedelta(minutes=10)
    Message.objects.filter(pk=stuck_sending.id).update(status="sending", updated_at=long_ago)
    Message.objects.filter(pk__in=[stuck_in.id, stuck_queued.id]).update(updated_at=long_ago)
    settings.SMSROUTER_PROCESSING = "inline"
    assert recovery.recover(older_than=300) == {"inbound": 1, "outbound": 2}
    rows = dict(Message.objects.values_list("text", "status"))
    assert rows == {"echo lost": "handled", "lost": "sent", "echo fresh": "received",
                    "was sending": "sent", "was queued": "sent"}
    assert fresh_in.id


def test_recovery_hands_what_was_left_behind_to_workers_in_tasks(queued, monkeypatch):
    from smsrouter import tasks

    routed, sent = [], []
    monkeypatch.setattr(tasks, "route_messages", SimpleNamespace(delay=routed.append))
    monkeypatch.setattr(tasks, "send_messages",
                        SimpleNamespace(apply_async=lambda args, eta: sent.append(args)))
    inbound = [smsrouter.incoming("gw", f"+{n}", "echo lost").id for n in range(150)]
    outbound = [msg.id for msg in smsrouter.send("lost", ["+1", "+2"], backend="gw")]
    Message.objects.update(updated_at=timezone.now() - timedelta(minutes=10))
    assert recovery.recover(older_than=300) == {"inbound": 150, "outbound": 2}
    assert [len(ids) for ids in routed] == [100, 50]
    assert sorted(pk for ids in routed for pk in ids) == inbound
    assert sent == [("gw", outbound)]


def test_the_recover_command(queued, settings):
    settings.SMSROUTER_PROCESSING = "inline"
    smsrouter.incoming("gw", "+1", "echo hi")
    Message.objects.update(updated_at=timezone.now() - timedelta(minutes=10))
    call_command("smsrouter_recover")
    assert statuses("in") == ["handled"]
    with pytest.raises(CommandError, match="would race"):
        call_command("smsrouter_recover", "--older-than", "0")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_rate_limit_grants_at_most_its_rate_per_second(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "rate-test"}}
    assert await ratelimit.take("gw", 5, 2) == 2
    assert await ratelimit.take("other", 1, 100) == 1


@pytest.mark.asyncio
async def test_once_a_window_is_used_up_the_next_sender_waits_for_the_next_one(settings):
    """Two senders of one backend share its rate: the second gets nothing in a full window."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "rate-window-test"}}
    window = int(time.time())  # before the first take: it may already fall in the next one
    first = await ratelimit.take("gw", 3, 3)
    second = await ratelimit.take("gw", 3, 3)
    assert (first, second) == (3, 3)
    assert int(time.time()) > window


def test_bulk_sends_store_in_batches(queued, django_assert_max_num_queries):
    """2,000 recipients in a few dozen queries (SQLite caps a statement at 999 variables)."""
    numbers = [f"+2557{n:08d}" for n in range(2000)]
    with django_assert_max_num_queries(60):
        sent = smsrouter.send("Clinic day", numbers, backend="gw")
    assert len(sent) == 2000 and Message.objects.filter(status="queued").count() == 2000


def test_periodic_jobs_run_on_a_fresh_app(queued):
    from smsrouter.router import periodic_jobs

    assert periodic_jobs(apps.Reminders) == [("remind", 3600.0), ("tick", 60.0)]
    workers.run_periodic("tests.apps.Reminders", "remind")
    workers.run_periodic("tests.apps.Reminders", "tick")
    assert Contact.objects.get().name == "reminded" and "tick" in apps.calls


def test_install_beat_schedules_the_sweeper_and_the_apps_jobs(settings):
    from celery import Celery

    from smsrouter.tasks import install_beat

    settings.SMSROUTER_APPS = ["tests.apps.Reminders"]
    app = Celery("t", set_as_current=False)
    install_beat(app)
    app.finalize()
    schedule = app.conf.beat_schedule
    assert {name: entry["schedule"] for name, entry in schedule.items()} == {
        "smsrouter.recover": 60.0, "tests.apps.Reminders.remind": 3600.0,
        "tests.apps.Reminders.tick": 60.0}


def test_the_send_command_reads_a_csv_and_schedules(queued, tmp_path, settings):
    settings.SMSROUTER_PROCESSING = "inline"
    path = tmp_path / "numbers.csv"
    path.write_text("name,phone\nAmina,+255700000001\nJuma,+255700000002\n")
    call_command("smsrouter_send", "+255700000003", "--text", "hi", "--backend", "gw",
                 "--csv", str(path))
    assert sorted(Message.objects.values_list("connection__identity", "status")) == [
        ("+255700000001", "sent"), ("+255700000002", "sent"), ("+255700000003", "sent")]
    call_command("smsrouter_send", "+1", "--text", "later", "--backend", "gw",
                 "--at", "2099-01-01T08:00+03:00")
    assert Message.objects.get(text="later").due_at.year == 2099
    with pytest.raises(CommandError, match="not a date and time"):
        call_command("smsrouter_send", "+1", "--text", "x", "--backend", "gw", "--at", "soon")
    with pytest.raises(CommandError, match="No recipients"):
        call_command("smsrouter_send", "--text", "x", "--backend", "gw")


def test_inline_mode_leaves_a_planned_retry_to_the_sweeper(queued, settings):
    """No worker to hand it to: nothing goes to a channel nobody reads; the row is the record."""
    from channels.layers import get_channel_layer

    settings.SMSROUTER_PROCESSING = "inline"
    dispatch.send_later("gw", [1, 2, 3])
    assert dispatch.OUTGOING_CHANNEL not in get_channel_layer().channels
    settings.SMSROUTER_PROCESSING = "channels"
    dispatch.send_later("gw", [1, 2, 3])
    assert dispatch.OUTGOING_CHANNEL in get_channel_layer().channels


def test_a_deferred_send_costs_no_attempt(queued, settings):
    settings.INSTALLED_BACKENDS["elsewhere"] = {"ENGINE": "tests.backends.DefersBackend"}
    (message,) = smsrouter.send("hello", "+1", backend="elsewhere")
    workers.send_by_ids("elsewhere", [message.id])
    assert Message.objects.values_list("status", "attempts").get() == ("queued", 0)
