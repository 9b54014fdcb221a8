"""What workers do with ids: claim and route once, in batches; recover what was left;
bulk sends, rate limits, periodic jobs and the commands. Sending itself (claims, retries,
backoff) is tests/test_sender.py's."""

import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

import smsrouter
from smsrouter import dispatch, inbound, periodic, ratelimit, recovery, tasks
from smsrouter.models import Contact, Message
from tests import apps

pytestmark = pytest.mark.django_db


def statuses(direction):
    return list(Message.objects.filter(direction=direction).order_by("pk").values_list("status", flat=True))


@pytest.fixture
def celery_tasks(monkeypatch):
    """The tasks dispatch sends by name, as (name, args, eta), instead of to a broker."""
    sent = []
    monkeypatch.setattr(dispatch, "_celery", lambda: type("App", (), {
        "send_task": staticmethod(lambda name, args, eta=None: sent.append((name, args, eta)))}))
    return sent


def route_once(message_id):
    return inbound.route_ids([message_id]) == 1


def test_a_queued_mode_stores_and_hands_on_the_id_after_commit(queued, django_capture_on_commit_callbacks):
    """The request only stores; routing waits for a worker."""
    with django_capture_on_commit_callbacks() as callbacks:
        msg = smsrouter.incoming("gw", "+1", "echo hi")
    handed_on = [c for c in callbacks if getattr(c, "func", None) is dispatch.route_later]
    assert [c.args for c in handed_on] == [(msg.id,)] and msg.responses == []
    assert statuses("in") == ["received"]


def test_a_message_is_routed_once_however_often_its_id_arrives(queued):
    msg = smsrouter.incoming("gw", "+1", "echo hi")
    assert route_once(msg.id) is True
    assert route_once(msg.id) is False
    assert statuses("in") == ["handled"] and statuses("out") == ["queued"]


def test_a_worker_dying_mid_routing_leaves_no_trace_and_the_message_waiting(queued, settings):
    """Claim and routing share a transaction: the app's writes vanish with the worker."""
    settings.SMSROUTER_APPS = ["tests.apps.WritesThenDies"]
    msg = smsrouter.incoming("gw", "+1", "die")
    with pytest.raises(apps.WorkerKilled):
        route_once(msg.id)
    assert statuses("in") == ["received"] and not Contact.objects.exists()
    Message.objects.filter(pk=msg.id).update(text="live")
    assert route_once(msg.id) is True
    assert list(Contact.objects.values_list("name", flat=True)) == ["from live"]


def test_a_batch_of_webhooks_hands_its_ids_to_workers_in_tasks_of_a_hundred(queued, celery_tasks,
                                                                           django_capture_on_commit_callbacks):
    """One task per hundred messages, not per message: the hand-off costs a worker little."""
    items = [("gw", f"+{n}", f"echo {n}", None, None) for n in range(150)]
    with django_capture_on_commit_callbacks(execute=True):
        ids = [msg.id for msg in inbound.accept(items)]
        assert celery_tasks == []  # not before the commit
    assert celery_tasks == [(dispatch.ROUTE_TASK, (ids[:100],), None),
                            (dispatch.ROUTE_TASK, (ids[100:],), None)]
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
        assert inbound.route_ids([*ids, ids[0]]) == 3
    assert inbound.route_ids(ids) == 0
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
        inbound.route_ids(ids)
    assert statuses("in") == ["received", "received"] and statuses("out") == []
    assert not Contact.objects.exists()


def test_a_tasks_messages_with_async_apps_are_routed_once_each_too(queued, settings):
    """`async def` phases take the same path: awaited from the worker's thread."""
    settings.SMSROUTER_APPS = ["tests.apps.AsyncHandles"]
    ids = [smsrouter.incoming("gw", f"+{n}", f"hi {n}").id for n in range(3)]
    assert inbound.route_ids([*ids, ids[0]]) == 3
    assert inbound.route_ids(ids) == 0
    assert statuses("in") == ["handled"] * 3 and statuses("out") == ["queued"] * 3
    assert sorted(Message.objects.filter(direction="out").values_list("text", flat=True)) == [
        "async hi 0", "async hi 1", "async hi 2"]


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


def test_recovery_routes_and_sends_what_was_left_behind(queued, settings, django_capture_on_commit_callbacks):
    """Inline recovery does the work itself: a lost id, a dead sender, a lost send task.
    The recovered message's reply leaves once the sweep's routing has committed."""
    stuck_in = smsrouter.incoming("gw", "+1", "echo lost")
    fresh_in = smsrouter.incoming("gw", "+2", "echo fresh")
    (stuck_sending,) = smsrouter.send("was sending", "+3", backend="gw")
    (stuck_queued,) = smsrouter.send("was queued", "+4", backend="gw")
    long_ago = timezone.now() - timedelta(minutes=10)
    Message.objects.filter(pk=stuck_sending.id).update(status="sending", updated_at=long_ago)
    Message.objects.filter(pk__in=[stuck_in.id, stuck_queued.id]).update(updated_at=long_ago)
    settings.SMSROUTER_PROCESSING = "inline"
    with django_capture_on_commit_callbacks(execute=True):
        counts = recovery.recover(older_than=300)
    rows = dict(Message.objects.values_list("text", "status"))
    assert rows == {"echo lost": "handled", "lost": "sent", "echo fresh": "received",
                    "was sending": "sent", "was queued": "sent"}
    assert counts == {"inbound": 1, "outbound": 2} and fresh_in.id


def test_recovery_hands_what_was_left_behind_to_workers_in_tasks(queued, celery_tasks):
    """Lost route tasks, a lost send task and a send its worker died in, in tasks of a
    hundred; a row queued a moment ago is not handed on a second time."""
    received = [smsrouter.incoming("gw", f"+{n}", "echo lost").id for n in range(150)]
    left = [msg.id for msg in smsrouter.send("lost", ["+1", "+2", "+4"], backend="gw")]
    (fresh,) = smsrouter.send("just queued", "+3", backend="gw")
    Message.objects.exclude(pk=fresh.id).update(updated_at=timezone.now() - timedelta(minutes=10))
    Message.objects.filter(pk=left[-1]).update(status="sending")  # its worker died mid-send
    counts = recovery.recover(older_than=300)
    routed = [args for name, args, _ in celery_tasks if name == dispatch.ROUTE_TASK]
    assert [len(ids) for (ids,) in routed] == [100, 50]
    assert sorted(pk for (ids,) in routed for pk in ids) == received
    assert [(name, args) for name, args, _ in celery_tasks if name == dispatch.SEND_TASK] == [
        (dispatch.SEND_TASK, ("gw", left))]
    assert counts == {"inbound": 150, "outbound": 3}


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


def test_a_rate_limited_backend_gets_only_what_the_limit_grants_per_call(queued, settings, monkeypatch):
    """The sender asks the limit before each call and hands the backend that many."""
    from asgiref.sync import async_to_sync

    from smsrouter import sender

    settings.INSTALLED_BACKENDS["gw"]["rate_limit"] = 2
    asked = []

    async def take(backend_name, wanted, rate):
        asked.append((backend_name, wanted, rate))
        return min(wanted, rate)

    monkeypatch.setattr(ratelimit, "take", take)
    sent = smsrouter.send("hello", [f"+{n}" for n in range(5)], backend="gw")
    assert async_to_sync(sender.send_due)(ids=[m.id for m in sent]).sent == 5
    assert asked == [("gw", 5, 2), ("gw", 3, 2), ("gw", 1, 2)]
    assert [len(batch) for _, batch in queued] == [2, 2, 1]


def test_bulk_sends_store_in_batches(queued, django_assert_max_num_queries):
    """2,000 recipients in a few dozen queries (SQLite caps a statement at 999 variables)."""
    numbers = [f"+2557{n:08d}" for n in range(2000)]
    with django_assert_max_num_queries(60):
        sent = smsrouter.send("Clinic day", numbers, backend="gw")
    assert len(sent) == 2000 and Message.objects.filter(status="queued").count() == 2000


def test_periodic_jobs_run_on_a_fresh_app(queued):
    from smsrouter.router import periodic_jobs

    assert periodic_jobs(apps.Reminders) == [("remind", 3600.0), ("tick", 60.0)]
    periodic.run("tests.apps.Reminders", "remind")
    periodic.run("tests.apps.Reminders", "tick")
    assert Contact.objects.get().name == "reminded" and "tick" in apps.calls


def test_the_celery_task_runs_a_job_only_on_the_turn_it_wins(queued):
    """Beat on two hosts, or a task delivered twice: one run per period."""
    assert tasks.run_periodic("tests.apps.Reminders", "remind", 3600.0) is True
    assert tasks.run_periodic("tests.apps.Reminders", "remind", 3600.0) is False
    assert list(Contact.objects.values_list("name", flat=True)) == ["reminded"]


def test_install_beat_schedules_the_sweeper_and_the_apps_jobs(settings):
    from celery import Celery

    from smsrouter.tasks import install_beat

    settings.SMSROUTER_APPS = ["tests.apps.Reminders"]
    app = Celery("t", set_as_current=False)
    install_beat(app)
    app.finalize()
    schedule = app.conf.beat_schedule
    assert {name: (entry["schedule"], entry["task"], tuple(entry["args"]))
            for name, entry in schedule.items()} == {
        "smsrouter.recover": (60.0, "smsrouter.recover", ()),
        "tests.apps.Reminders.remind": (3600.0, "smsrouter.run_periodic",
                                        ("tests.apps.Reminders", "remind", 3600.0)),
        "tests.apps.Reminders.tick": (60.0, "smsrouter.run_periodic",
                                      ("tests.apps.Reminders", "tick", 60.0))}


def test_the_send_command_reads_a_csv_and_schedules(queued, tmp_path, settings,
                                                    django_capture_on_commit_callbacks):
    settings.SMSROUTER_PROCESSING = "inline"
    path = tmp_path / "numbers.csv"
    path.write_text("name,phone\nAmina,+255700000001\nJuma,+255700000002\n")
    with django_capture_on_commit_callbacks(execute=True):
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


@pytest.mark.django_db(transaction=True)
def test_the_sender_command_once_does_what_is_due_and_exits(queued, celery_tasks, settings, capsys):
    """For cron: routes what was left, re-queues and sends interrupted and due sends, runs
    the periodic jobs whose turn it is; scheduled sends stay queued until due. (Committed
    for real: the command's database work runs in a thread of its own.)"""
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp", "tests.apps.Reminders"]
    apps.calls.clear()
    smsrouter.incoming("gw", "+1", "echo lost")  # stored in celery mode, its task lost
    (interrupted,) = smsrouter.send("half-sent", "+2", backend="gw")
    smsrouter.send("due", "+3", backend="gw")
    smsrouter.send("tomorrow", "+4", backend="gw", at=timezone.now() + timedelta(days=1))
    long_ago = timezone.now() - timedelta(minutes=10)
    Message.objects.filter(direction="in").update(updated_at=long_ago)
    Message.objects.filter(pk=interrupted.id).update(status="sending", attempts=1, updated_at=long_ago)
    settings.SMSROUTER_PROCESSING = "inline"
    call_command("smsrouter_sender", "--once")
    out = capsys.readouterr().out
    assert "Routed 1 stuck message(s), re-queued 1 interrupted send(s)" in out
    assert "ran 2 periodic job(s)" in out
    assert dict(Message.objects.filter(direction="out").values_list("text", "status")) == {
        "lost": "sent", "half-sent": "sent", "due": "sent", "tomorrow": "queued"}
    assert Contact.objects.get().name == "reminded" and "tick" in apps.calls
    call_command("smsrouter_sender", "--once")
    assert "ran 0 periodic job(s)" in capsys.readouterr().out  # not their turn yet
