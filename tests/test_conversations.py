"""Conversations: a dialogue scripted through the `sms` fixture, the session it leaves,
retries, branching, starting from code, reminders and expiry on a moved clock, opt-out,
the answers' CSV, the checks, and the same dialogue routed by a worker (Celery mode)."""

import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.db import connection as db
from django.db import connections as db_connections
from django.utils import timezone

import smsrouter
from smsrouter import inbound, periodic, signals
from smsrouter.addressbook import get_connection
from smsrouter.contrib.conversations import Conversation, Step, checks, state, timers
from smsrouter.contrib.conversations.models import Answer, Session, SessionStatus
from smsrouter.contrib.conversations.signals import (
    conversation_expired,
    conversation_finished,
)
from smsrouter.models import Connection, Message
from smsrouter.testing import committed

APP = "smsrouter.contrib.conversations.ConversationsApp"
PHONE = "+15550000001"


# The README's "Conversations" survey (tests/test_readme.py runs the README's own).
class Survey(Conversation):
    trigger = "survey"
    steps = [
        Step("name", "What is your name?"),
        Step("age", "How old are you, {name}?", parse=int,
             error="Please send your age as a number."),
        Step("drink", "Tea or coffee?", choices=["tea", "coffee"]),
    ]
    done = "Thank you {name}, {drink} it is."


class Checkup(Conversation):
    """Branches: only those who feel ill are asked since when; two wrong answers end it."""

    trigger = "checkup|check"
    max_retries = 1
    steps = [
        Step("ill", "Do you feel ill?", choices=["yes", "no"],
             next=lambda answers: "since" if answers["ill"] == "yes" else None),
        Step("since", "Since how many days?", parse=int),
    ]
    done = "Get well."
    remind_after = timedelta(hours=2)
    reminder = "Still there? {question}"


@pytest.fixture
def conversations(settings):
    settings.SMSROUTER_CONVERSATIONS = [f"{__name__}.Survey", f"{__name__}.Checkup"]


def only_session():
    return Session.objects.get()


@pytest.fixture
def readme_settings(settings):
    """The README's settings lines, on the demo's settings that the tests run under."""
    settings.SMSROUTER_APPS = [APP, *[path for path in settings.SMSROUTER_APPS if path != APP]]
    settings.SMSROUTER_CONVERSATIONS = [f"{__name__}.Survey"]


def test_once_done_messages_go_to_the_apps_again(sms, readme_settings):
    for text in ["survey", "Amina", "34", "tea"]:
        sms.receive(text)
    assert sms.receive("echo hi").texts() == ["hi"]


@pytest.mark.sms_apps(APP, "smsrouter.contrib.echo.EchoApp")
def test_the_session_records_every_answer_and_where_it_ended(sms, conversations):
    sms.receive("survey")
    sms.receive("Amina")
    session = only_session()
    assert (session.status, session.step, session.answers, session.retries) == (
        "active", "age", {"name": "Amina"}, 0)
    sms.receive("abc")
    assert only_session().retries == 1
    sms.receive(" 34 ")
    sms.receive("tea")
    session = only_session()
    assert (session.status, session.closed_at_step, session.answers) == (
        "done", "drink", {"name": "Amina", "age": 34, "drink": "tea"})
    assert session.closed_at is not None and session.started_at <= session.updated_at
    assert list(Answer.objects.order_by("pk").values_list("step", "text", "value")) == [
        ("name", "Amina", "Amina"), ("age", " 34 ", 34), ("drink", "tea", "tea")]


@pytest.mark.sms_apps(APP, "smsrouter.contrib.echo.EchoApp")
def test_a_message_that_triggers_nothing_goes_on_to_the_other_apps(sms, conversations):
    assert sms.receive("echo survey").texts() == ["survey"]
    assert not Session.objects.exists()


@pytest.mark.sms_apps(APP)
def test_a_step_gives_up_after_its_retries(sms, conversations):
    """max_retries = 1: one wrong answer gets the error reply, the second ends the session."""
    sms.receive("check")
    assert sms.receive("maybe").texts() == ["Please answer one of: yes, no."]
    assert sms.receive("perhaps").texts() == [str(Checkup.gave_up)]
    session = only_session()
    assert (session.status, session.closed_at_step, session.retries) == ("cancelled", "ill", 2)


@pytest.mark.sms_apps(APP)
def test_next_picks_the_step_from_the_answers(sms, conversations):
    sms.receive("checkup")
    assert sms.receive("NO").texts() == ["Get well."]
    assert only_session().answers == {"ill": "no"}
    sms.receive("checkup", identity="+2")
    assert sms.receive("yes", identity="+2").texts() == ["Since how many days?"]
    assert sms.receive("3", identity="+2").texts() == ["Get well."]


@pytest.mark.sms_apps(APP)
def test_finishing_sends_conversation_finished(sms, conversations):
    heard = []
    conversation_finished.connect(lambda sender, session, message, **kw: heard.append(
        (sender, session.answers, message.text)), weak=False, dispatch_uid="test-finished")
    try:
        sms.receive("checkup")
        sms.receive("no")
    finally:
        conversation_finished.disconnect(dispatch_uid="test-finished")
    assert heard == [(Checkup, {"ill": "no"}, "no")]


def test_one_active_session_per_connection_is_a_database_rule(db):
    connection = get_connection("test", PHONE)
    now = timezone.now()
    fields = {"connection": connection, "conversation": "x", "step": "a", "started_at": now,
              "updated_at": now, "expires_at": now}
    Session.objects.create(**fields)
    Session.objects.create(**fields, status=SessionStatus.DONE)
    with pytest.raises(IntegrityError), transaction.atomic():
        Session.objects.create(**fields)


@pytest.mark.sms_apps(APP)
def test_start_from_code_asks_the_first_question_and_takes_the_answers(sms, conversations):
    """An outbound survey: Survey.start() cancels what the number was in, then asks."""
    sms.receive("checkup")
    connection = get_connection("test", PHONE)
    with committed():
        Survey.start(connection)
    assert sms.outbox.texts()[-1] == "What is your name?"
    assert sms.receive("Juma").texts() == ["How old are you, Juma?"]
    assert sorted(Session.objects.values_list("conversation", "status")) == [
        (Checkup.name(), "cancelled"), (Survey.name(), "active")]


@pytest.mark.sms_apps(APP)
def test_a_silent_number_is_reminded_once_then_the_session_expires(sms, conversations):
    """The clock is moved, not waited for: two hours of silence bring the reminder, three
    days the expiry (the default), with conversation_expired."""
    sms.receive("checkup")
    started = only_session().updated_at
    with committed():
        assert timers.sweep(started + timedelta(hours=1)) == (0, 0)
        assert timers.sweep(started + timedelta(hours=2)) == (0, 1)
        assert timers.sweep(started + timedelta(hours=3)) == (0, 0)
    assert sms.outbox.texts()[-1] == "Still there? Do you feel ill?"
    expired = []
    conversation_expired.connect(lambda sender, session, **kw: expired.append((sender, session.pk)),
                                 weak=False, dispatch_uid="test-expired")
    try:
        assert timers.sweep(started + timedelta(days=3) - timedelta(seconds=1)) == (0, 0)
        assert timers.sweep(started + timedelta(days=3)) == (1, 0)
    finally:
        conversation_expired.disconnect(dispatch_uid="test-expired")
    session = only_session()
    assert (session.status, session.closed_at_step) == ("expired", "ill")
    assert expired == [(Checkup, session.pk)]
    assert sms.receive("checkup").texts() == ["Do you feel ill?"]  # a new one may begin


@pytest.mark.sms_apps(APP, "smsrouter.contrib.echo.EchoApp")
def test_an_answer_puts_off_expiry_and_the_periodic_job_keeps_the_time(sms, conversations, settings,
                                                                        monkeypatch):
    """Through the app's @periodic job, as the scheduler runs it, on a patched clock."""
    settings.SMSROUTER_CONVERSATION_EXPIRE_AFTER = 3600  # seconds, or a timedelta
    settings.SMSROUTER_CONVERSATION_REMIND_AFTER = None
    sms.receive("survey")
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now + timedelta(minutes=50))
    sms.receive("Amina")
    monkeypatch.setattr(timezone, "now", lambda: now + timedelta(minutes=70))
    periodic.run(APP, "sweep")
    assert only_session().status == "active"
    monkeypatch.setattr(timezone, "now", lambda: now + timedelta(minutes=111))
    periodic.run(APP, "sweep")
    assert only_session().status == "expired"
    assert sms.receive("echo 34").texts() == ["34"]  # not an answer any more
    assert ("smsrouter.contrib.conversations.app.ConversationsApp", "sweep") in [
        (job.app_path, job.method) for job in periodic.jobs()]


@pytest.mark.sms_apps(APP)
def test_opting_out_cancels_the_session(sms, conversations):
    """The receiver of smsrouter.signals.opted_out (sent by STOP, or for a gateway's error)."""
    sms.receive("survey")
    signals.opted_out.send(sender=Connection, connection=get_connection("test", PHONE), message=None)
    session = only_session()
    assert (session.status, session.closed_at_step) == ("cancelled", "name")


def test_answers_export_as_csv_one_row_per_session(sms, conversations, settings, tmp_path, capsys):
    settings.SMSROUTER_APPS = [APP]
    for phone, answers in [("+1", ["=cmd()", "34", "tea"]), ("+2", ["Juma"])]:
        for text in ["survey", *answers]:
            sms.receive(text, identity=phone)
    call_command("smsrouter_export_answers", Survey.name())
    header, first, second = (line.split(",") for line in capsys.readouterr().out.splitlines())
    assert header == ["session", "conversation", "identity", "backend", "status", "closed_at_step",
                      "started_at", "updated_at", "name", "age", "drink"]
    assert first[1:6] + first[8:] == [Survey.name(), "+1", "test", "done", "drink", "'=cmd()", "34", "tea"]
    assert second[1:6] + second[8:] == [Survey.name(), "+2", "test", "active", "", "Juma", "", ""]
    call_command("smsrouter_export_answers", "--status", "done", "-o", str(tmp_path / "a.csv"))
    assert [row.split(",")[2] for row in (tmp_path / "a.csv").read_text().splitlines()] == ["identity", "+1"]


def test_the_admin_lists_sessions_and_exports_them(admin_client, sms, conversations, settings):
    settings.SMSROUTER_APPS = [APP]
    sms.receive("survey")
    sms.receive("Amina")
    page = admin_client.get("/admin/conversations/session/", {"status": "active", "step": "age"})
    assert page.status_code == 200 and b"tests.test_conversations.Survey" in page.content
    assert admin_client.get("/admin/conversations/session/", {"closed_at_step": "age"}).status_code == 200
    assert admin_client.get("/admin/conversations/answer/").status_code == 200
    exported = admin_client.post("/admin/conversations/session/", {
        "action": "export_answers", "_selected_action": [only_session().pk]})
    assert exported["Content-Type"].startswith("text/csv")
    assert exported.content.decode().splitlines()[1].endswith(",Amina,,")


def test_the_checks_want_the_app_first_and_importable_conversations(settings):
    settings.SMSROUTER_CONVERSATIONS = [f"{__name__}.Survey"]
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp", APP]
    assert [e.id for e in checks.check_conversations()] == ["smsrouter.conversations.W001"]
    settings.SMSROUTER_APPS = [APP]
    assert checks.check_conversations() == []
    settings.SMSROUTER_CONVERSATIONS = [f"{__name__}.Survey", f"{__name__}.Survey2"]
    assert [e.id for e in checks.check_conversations()] == ["smsrouter.conversations.E001"]


def test_a_worker_routes_the_dialogue_in_its_claim_transaction(db, queued, settings):
    """Celery mode: each answer is routed by route_ids(), the session locked in the claim."""
    settings.SMSROUTER_APPS = [APP]
    settings.SMSROUTER_CONVERSATIONS = [f"{__name__}.Survey"]
    replies = []
    for text in ["survey", "Amina", "x", "34", "tea"]:
        msg = smsrouter.incoming("gw", "+1", text)
        assert inbound.route_ids([msg.id]) == 1
        replies += Message.objects.filter(in_response_to=msg.id).values_list("text", flat=True)
    assert replies == ["What is your name?", "How old are you, Amina?",
                       "Please send your age as a number.", "Tea or coffee?",
                       "Thank you Amina, tea it is."]
    assert only_session().status == "done"


def test_a_workers_claim_reads_the_flag_so_a_message_outside_any_session_asks_nothing(
        db, queued, settings):
    """The claim reads each number's row in the routing transaction: in_session is as
    good as the INSERT's read-back, and no query of the sessions is needed."""
    from django.test.utils import CaptureQueriesContext

    settings.SMSROUTER_APPS = [APP, "smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_CONVERSATIONS = [f"{__name__}.Survey"]
    msg = smsrouter.incoming("gw", "+1", "echo hi")
    with CaptureQueriesContext(db_connections["default"]) as queries:
        assert inbound.route_ids([msg.id]) == 1
    assert queries.captured_queries
    assert not [q["sql"] for q in queries.captured_queries if Session._meta.db_table in q["sql"]]
    assert list(Message.objects.filter(in_response_to=msg.id).values_list("text", flat=True)) == ["hi"]


def test_messages_of_one_number_in_one_claim_see_the_session_the_first_opened(db, queued, settings):
    """One Connection object per number in a claim: the session that the first message
    opens is known to the next, though the claim read the row before it existed."""
    settings.SMSROUTER_APPS = [APP]
    settings.SMSROUTER_CONVERSATIONS = [f"{__name__}.Survey"]
    ids = [smsrouter.incoming("gw", "+1", text).id for text in ["survey", "Amina", "34"]]
    assert inbound.route_ids(ids) == 3
    replies = Message.objects.filter(in_response_to__in=ids).order_by("in_response_to")
    assert list(replies.values_list("text", flat=True)) == [
        "What is your name?", "How old are you, Amina?", "Tea or coffee?"]


@pytest.mark.django_db(transaction=True)
def test_a_second_quick_answer_waits_for_the_first_to_commit(sms, settings):
    """The session row is locked while an answer is routed: an answer arriving meanwhile
    (another process's, here another thread's) waits, then sees the step the first moved to."""
    if db.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite lets one writer in at a time anyway")
    settings.SMSROUTER_APPS = [APP]
    settings.SMSROUTER_CONVERSATIONS = [f"{__name__}.Survey"]
    sms.receive("survey")
    connection = get_connection("test", PHONE)
    replies = []

    def second_answer():
        try:
            replies.extend(smsrouter.incoming("test", PHONE, "Amina").responses)
        finally:
            db_connections.close_all()

    with transaction.atomic():
        session = state.active(connection)  # as the first answer's routing holds it
        racer = threading.Thread(target=second_answer)
        racer.start()
        deadline = time.monotonic() + 10
        while not waiting_on_a_lock():
            assert time.monotonic() < deadline, "the second answer never reached the lock"
            time.sleep(0.01)
        session.step, session.answers = "age", {"name": "Juma"}
        session.save()
    racer.join(timeout=10)
    assert [reply.text for reply in replies] == ["Please send your age as a number."]


def waiting_on_a_lock():
    """Whether another backend waits for a row lock of a session (PostgreSQL)."""
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # else one snapshot per transaction
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                       "AND query LIKE %s AND pid <> pg_backend_pid()", ["%conversations_session%"])
        return cursor.fetchone()[0] > 0


@pytest.mark.sms_apps(APP, "smsrouter.contrib.echo.EchoApp")
def test_a_session_whose_step_is_gone_is_cancelled_and_the_message_goes_on(sms, conversations):
    """A deploy renamed the step a number was at: its next message is not lost."""
    sms.receive("survey")
    Session.objects.update(step="old name")
    assert sms.receive("echo hi").texts() == ["hi"]
    assert only_session().status == "cancelled"


def test_the_package_names_its_public_api():
    """Imported before the app registry is ready, the package loads its names on use."""
    import smsrouter.contrib.conversations as package

    assert package.__all__ == ["Conversation", "ConversationsApp", "Registration", "Step", "register"]
    assert all(getattr(package, name).__name__ == name for name in package.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'Session'"):
        package.Session  # noqa: B018


@pytest.mark.sms_apps(APP, "smsrouter.contrib.echo.EchoApp")
def test_a_session_opened_by_another_process_takes_the_next_message(sms, conversations):
    """The session row and the connection's flag were written behind this process's
    cached Connection, which says "no session": the answer reaches the session."""
    cached = get_connection(sms.backend, PHONE)
    with transaction.atomic():
        Session.objects.create(connection_id=cached.pk, conversation=Survey.name(), step="name",
                               started_at=timezone.now(), updated_at=timezone.now(),
                               expires_at=timezone.now() + timedelta(hours=1))
        Connection.objects.filter(pk=cached.pk).update(in_session=True)
    assert not cached.in_session
    assert sms.receive("echo Amina", PHONE).texts() == ["How old are you, echo Amina?"]
    assert only_session().answers == {"name": "echo Amina"}


@pytest.mark.sms_apps(APP, "smsrouter.contrib.echo.EchoApp")
def test_a_message_outside_any_session_asks_nothing_of_the_sessions(sms, conversations):
    from django.test.utils import CaptureQueriesContext

    sms.receive("echo warm", PHONE)  # the connection made and cached
    with CaptureQueriesContext(db) as queries:
        assert sms.receive("echo hi", PHONE).texts() == ["hi"]
    assert queries.captured_queries
    assert not [q["sql"] for q in queries.captured_queries if Session._meta.db_table in q["sql"]]


@pytest.mark.sms_apps(APP, "smsrouter.contrib.echo.EchoApp")
def test_opening_and_closing_a_session_set_the_connections_flag(sms, conversations):
    sms.receive("survey", PHONE)
    cached = get_connection(sms.backend, PHONE)
    assert cached.in_session and Connection.objects.get(pk=cached.pk).in_session
    for text in ["Amina", "34", "tea"]:
        sms.receive(text, PHONE)
    assert not cached.in_session and not Connection.objects.get(pk=cached.pk).in_session
    assert sms.receive("echo after", PHONE).texts() == ["after"]


@pytest.mark.django_db
def test_a_message_whose_row_was_not_read_asks_the_sessions_table(conversations):
    """A record not read in its routing transaction (neither INSERTed nor claimed there):
    though its connection object says "no session", it asks, and the answer reaches the
    session."""
    from smsrouter.contrib.conversations import sessions
    from smsrouter.messages import IncomingMessage

    connection = get_connection("test", PHONE)
    Session.objects.create(connection_id=connection.pk, conversation=Survey.name(), step="name",
                           started_at=timezone.now(), updated_at=timezone.now(),
                           expires_at=timezone.now() + timedelta(hours=1))
    record = Message.objects.create(direction="in", backend=connection.backend,
                                    connection=connection, text="Amina", status="received")
    msg = IncomingMessage(Message.objects.get(pk=record.pk), connection)
    assert not connection.in_session
    assert sessions.take(msg)
    assert only_session().answers == {"name": "Amina"}
