"""The phase rules of ARCHITECTURE.md §2, one behaviour per test."""

import logging
import threading

import pytest

from smsrouter import App
from smsrouter.messages import IncomingMessage, OutgoingMessage
from smsrouter.models import Backend, Connection, Message, Status
from smsrouter.router import BoundApp, Router
from tests import apps

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def calls():
    apps.calls.clear()
    return apps.calls


def test_phases_run_in_order_and_each_app_starts_once(sms, settings, calls):
    """start, filter, parse, handle, default, cleanup; apps in their listed order."""
    settings.SMSROUTER_APPS = ["tests.apps.First", "tests.apps.Second"]
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    sms.receive("hello")
    assert calls == [
        "First.start", "Second.start",
        "First.filter", "Second.filter",
        "First.parse", "Second.parse",
        "First.handle", "Second.handle",
        "First.default", "Second.default",
        "First.cleanup", "Second.cleanup",
    ]


@pytest.mark.sms_apps("tests.apps.DropSpam", "tests.apps.Handles")
def test_filter_true_drops_the_message_but_cleanup_runs(sms, calls):
    """A filter that returns True stops parse, handle and default; cleanup still runs."""
    assert sms.receive("buy spam now") == []
    assert calls == [
        "DropSpam.start", "Handles.start",
        "DropSpam.filter",
        "DropSpam.cleanup", "Handles.cleanup",
    ]


@pytest.mark.sms_apps("tests.apps.DropSpam")
def test_a_dropped_message_gets_no_default_reply(sms, settings):
    """Filtering is silent even when a default reply is configured."""
    settings.SMSROUTER_DEFAULT_RESPONSE = "Sorry"
    assert sms.receive("spam") == []


@pytest.mark.sms_apps("tests.apps.First", "tests.apps.Handles", "tests.apps.Second")
def test_handle_true_skips_later_handlers_and_the_default_phase(sms, settings, calls):
    """Once an app handles a message, later handle() and every default() are skipped."""
    settings.SMSROUTER_DEFAULT_RESPONSE = "Sorry"
    assert sms.receive("hi").texts() == ["handled hi"]
    assert "Second.handle" not in calls
    assert not [call for call in calls if call.endswith(".default")]
    cleanups = [call for call in calls if call.endswith(".cleanup")]
    assert cleanups == ["First.cleanup", "Handles.cleanup", "Second.cleanup"]


@pytest.mark.sms_apps("tests.apps.First", "tests.apps.Defaults", "tests.apps.Second")
def test_default_true_stops_the_default_phase_and_the_default_reply(sms, settings, calls):
    """The default phase runs only when nobody handled; True there ends it."""
    settings.SMSROUTER_DEFAULT_RESPONSE = "Sorry"
    assert sms.receive("hi").texts() == ["from default"]
    assert "First.default" in calls and "Second.default" not in calls


@pytest.mark.sms_apps("tests.apps.First")
def test_default_response_when_nobody_handled(sms, settings):
    """SMSROUTER_DEFAULT_RESPONSE answers what no app handled."""
    settings.SMSROUTER_DEFAULT_RESPONSE = "Sorry, I didn't understand."
    assert sms.receive("gibberish").texts() == ["Sorry, I didn't understand."]


@pytest.mark.parametrize("silence", [None, ""])
@pytest.mark.sms_apps("tests.apps.First")
def test_no_default_response_means_silence(sms, settings, silence):
    """None (or an empty string) sends nothing."""
    settings.SMSROUTER_DEFAULT_RESPONSE = silence
    assert sms.receive("gibberish") == []
    assert sms.outbox == []


@pytest.mark.sms_apps("tests.apps.Parses", "tests.apps.ReadsFields")
def test_parse_annotates_fields_for_later_apps_and_they_are_stored(sms):
    """What parse() puts in msg.fields reaches later apps and the Message row."""
    assert sms.receive("one two three").texts() == ["3 words"]
    assert Message.objects.get(direction="in").fields == {"words": 3}


@pytest.mark.sms_apps("tests.apps.Broken", "tests.apps.Handles")
def test_a_raising_app_is_logged_with_the_message_id_and_the_next_app_runs(sms, caplog, calls):
    """One broken app loses nothing: the next app answers, and the message is handled."""
    with caplog.at_level(logging.ERROR, logger="smsrouter.router"):
        assert sms.receive("hi").texts() == ["handled hi"]
    message = Message.objects.get(direction="in")
    assert message.status == Status.HANDLED
    assert f"Broken.filter() raised on message {message.pk}" in caplog.text
    assert "Broken.cleanup() raised" in caplog.text and "Handles.cleanup" in calls


@pytest.mark.sms_apps("tests.apps.Handles", "tests.apps.Broken")
def test_an_outgoing_phase_that_raises_does_not_cancel_the_reply(sms, caplog):
    """A broken outgoing() has no opinion: the reply is still sent."""
    assert sms.receive("hi").texts() == ["handled hi"]
    assert [m.text for m in sms.outbox] == ["handled hi"]
    assert "Broken.outgoing() raised on message" in caplog.text


@pytest.mark.sms_apps("tests.apps.First", "tests.apps.Second", "tests.apps.Handles")
def test_outgoing_runs_apps_in_reverse_order(sms, calls):
    """The outgoing phase walks the apps from last to first."""
    sms.receive("hi")
    outgoing = [call for call in calls if call.endswith(".outgoing")]
    assert outgoing == ["Handles.outgoing", "Second.outgoing", "First.outgoing"]


@pytest.mark.sms_apps("tests.apps.CancelsSecret", "tests.apps.Handles")
def test_outgoing_false_cancels_that_reply_and_says_who(sms):
    """A cancelled reply is never sent; its row says which app cancelled it."""
    assert sms.receive("secret").texts() == ["handled secret"]
    assert sms.outbox == []
    reply = Message.objects.get(direction="out")
    assert (reply.status, reply.error, reply.attempts) == (
        Status.FAILED, "cancelled by CancelsSecret.outgoing()", 0)  # never tried


@pytest.mark.sms_apps("tests.apps.AsyncHandles")
def test_async_phases_are_awaited(sms):
    """An `async def` phase runs on the loop and its reply goes out."""
    assert sms.receive("hi").texts() == ["async hi"]
    assert sms.outbox.texts() == ["async hi"]


@pytest.mark.sms_apps("tests.apps.UsesOrm")
def test_sync_phases_may_use_the_orm(sms):
    """A `def` phase runs off the loop, in the caller's database connection."""
    assert sms.receive("count").texts() == ["0 contacts"]


@pytest.mark.sms_apps("tests.apps.Unserializable")
def test_fields_that_cannot_be_stored_mark_the_message_failed_but_keep_it(sms):
    """Routing that breaks marks the message failed, with the reason; the SMS stays stored."""
    sms.receive("hi")
    message = Message.objects.get(direction="in")
    assert message.status == Status.FAILED
    assert "not JSON-serializable" in message.error and message.text == "hi"


def test_a_new_router_routes_each_message(sms, settings, calls):
    """No global router: each message gets fresh app instances, each started once."""
    settings.SMSROUTER_APPS = ["tests.apps.First"]
    sms.receive("one")
    sms.receive("two")
    assert calls.count("First.start") == 2


def test_sync_or_async_is_decided_once_per_class():
    """BoundApp records, per overridden phase, whether it is a coroutine function."""
    assert BoundApp.of(apps.AsyncHandles).kinds == {"handle": True}
    assert BoundApp.of(apps.Parses).kinds == {"parse": False}
    assert Router([apps.First]).apps[0][1] == BoundApp.of(apps.First).kinds


def test_a_sync_caller_with_only_def_phases_routes_in_its_own_thread(sms, settings):
    """A blocking router: no event loop and no worker thread between `incoming()` and the apps."""
    settings.SMSROUTER_APPS = ["tests.apps.RecordsThread"]
    apps.RecordsThread.seen.clear()
    assert sms.receive("hi").texts() == ["noted"]
    assert apps.RecordsThread.seen == [(threading.get_ident(), False)]
    assert sms.outbox.texts() == ["noted"]


class RespondsAndReturns(App):
    """RapidSMS style: `return msg.respond(...)`, a truthy OutgoingMessage."""

    def handle(self, msg):
        return msg.respond(f"got {msg.text}")


class AsyncRespondsAndReturns(App):
    async def handle(self, msg):
        return msg.respond(f"async got {msg.text}")


class FiltersWithAReason(App):
    def filter(self, msg):
        return "blocked number" if "spam" in msg.text else None


class DefaultsWithTheReply(App):
    def default(self, msg):
        return msg.respond("from default")


@pytest.mark.parametrize("app", ["RespondsAndReturns", "AsyncRespondsAndReturns"])
def test_a_truthy_handle_counts_as_handled(sms, settings, calls, app):
    """Any truthy answer handles the message, as in RapidSMS: later handle() and the
    default phase are skipped, and no default reply is sent."""
    settings.SMSROUTER_APPS = [f"tests.test_router.{app}", "tests.apps.Second"]
    settings.SMSROUTER_DEFAULT_RESPONSE = "Sorry"
    assert sms.receive("hi").texts() == [f"{'async ' * app.startswith('Async')}got hi"]
    assert "Second.handle" not in calls and "Second.default" not in calls


def test_a_truthy_filter_drops_and_a_falsy_one_does_not(sms, settings, calls):
    settings.SMSROUTER_APPS = ["tests.test_router.FiltersWithAReason", "tests.apps.Handles"]
    assert sms.receive("spam") == [] and "Handles.handle" not in calls
    assert sms.receive("ham").texts() == ["handled ham"]


def test_a_truthy_default_stops_the_default_phase(sms, settings, calls):
    settings.SMSROUTER_APPS = ["tests.test_router.DefaultsWithTheReply", "tests.apps.Second"]
    settings.SMSROUTER_DEFAULT_RESPONSE = "Sorry"
    assert sms.receive("hi").texts() == ["from default"]
    assert "Second.default" not in calls


class Scratch(App):
    """Keeps what parse() saw on the instance, for handle() to answer with."""

    def parse(self, msg):
        self.seen = [*getattr(self, "seen", []), msg.text]

    def handle(self, msg):
        return msg.respond(",".join(self.seen))


@pytest.mark.sms_apps("tests.test_router.Scratch")
def test_an_app_instance_serves_one_message(sms):
    """A message's phases share the instance; the next message gets a new one."""
    assert sms.receive("one").texts() == ["one"]
    assert sms.receive("two").texts() == ["two"]


def unsaved(text):
    connection = Connection(backend=Backend(name="test"), identity="+1")
    return IncomingMessage(Message(text=text, fields={}), connection)


def test_the_router_is_a_plain_blocking_call(calls):
    """Router(apps).incoming(msg) routes it before returning, `async def` phases and all;
    outgoing(msg) names the app that cancels."""
    msg = unsaved("hi")
    assert Router([apps.First, apps.AsyncHandles]).incoming(msg) is None
    assert [reply.text for reply in msg.responses] == ["async hi"]
    assert calls[-1] == "First.cleanup"
    router = Router([apps.CancelsSecret, apps.First])
    assert router.outgoing(OutgoingMessage("secret", msg.connection)) == "CancelsSecret"
    assert router.outgoing(OutgoingMessage("public", msg.connection)) is None
    assert calls.count("First.start") == 2  # once per router
