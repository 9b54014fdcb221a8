"""smsrouter.incoming() and smsrouter.send(): what is stored, routed and sent."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from django.utils import timezone

import smsrouter
from smsrouter.exceptions import ConfigurationError, UnknownBackend
from smsrouter.models import Backend, Connection, Message, Status
from tests import backends as test_backends

pytestmark = pytest.mark.django_db

RECORDING = "tests.backends.RecordingBackend"


@pytest.fixture
def gateways(settings):
    """Four gateways: two that record, one that is down, one that refuses some numbers."""
    test_backends.calls.clear()
    settings.INSTALLED_BACKENDS = {
        "a": {"ENGINE": RECORDING},
        "b": {"ENGINE": RECORDING},
        "down": {"ENGINE": "tests.backends.DownBackend"},
        "picky": {"ENGINE": "tests.backends.PickyBackend"},
    }
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    return test_backends.calls


def test_incoming_stores_and_routes_and_returns_the_message(gateways, django_capture_on_commit_callbacks):
    """The returned message carries the public attributes of ARCHITECTURE.md §2; its reply
    is sent once committed."""
    with django_capture_on_commit_callbacks(execute=True):
        msg = smsrouter.incoming("a", "+255700000001", "echo hi", fields={"source": "test"})
    assert (msg.text, msg.connection.identity, msg.connection.backend.name) == (
        "echo hi", "+255700000001", "a")
    assert msg.fields == {"source": "test"} and msg.received_at is not None
    assert [(r.text, r.status, r.in_response_to) for r in msg.responses] == [("hi", "sent", msg)]
    stored = Message.objects.get(pk=msg.id)
    assert (stored.direction, stored.status, stored.fields) == ("in", "handled", {"source": "test"})
    reply = Message.objects.get(pk=msg.responses[0].id)
    assert (reply.direction, reply.status, reply.in_response_to_id) == ("out", "sent", msg.id)
    assert reply.external_id == f"gw-{reply.pk}"


def test_the_message_is_stored_before_it_is_routed(sms, settings):
    """An app already finds its message in the database, status "received"."""
    settings.SMSROUTER_APPS = ["tests.test_api.LooksItselfUp"]
    assert sms.receive("hi").texts() == ["received"]


class LooksItselfUp(smsrouter.App):
    def handle(self, msg):
        msg.respond(Message.objects.get(pk=msg.id).status)
        return True


def test_a_repeated_external_id_returns_the_stored_message_and_routes_nothing(
    gateways, django_capture_on_commit_callbacks
):
    """Gateways retry webhooks: the second delivery is answered from the database."""
    with django_capture_on_commit_callbacks(execute=True):
        first = smsrouter.incoming("a", "+255700000001", "echo hi", external_id="kannel-42")
    with django_capture_on_commit_callbacks(execute=True):
        again = smsrouter.incoming("a", "+255700000001", "echo hi", external_id="kannel-42")
    assert again.id == first.id
    assert [r.id for r in again.responses] == [r.id for r in first.responses]
    assert Message.objects.filter(direction="in").count() == 1
    assert len(gateways) == 1


def test_the_same_external_id_on_another_backend_is_another_message(gateways):
    """External ids are unique per backend, not across backends."""
    one = smsrouter.incoming("a", "+255700000001", "hi", external_id="42")
    two = smsrouter.incoming("b", "+255700000001", "hi", external_id="42")
    assert one.id != two.id


def test_an_unknown_backend_is_refused_before_anything_is_written(gateways):
    """UnknownBackend names the backends there are, and no row is written."""
    with pytest.raises(UnknownBackend, match=r"No backend named 'nope' in INSTALLED_BACKENDS \(a, b, down, picky\)"):
        smsrouter.incoming("nope", "+255700000001", "hi")
    assert not Backend.objects.exists() and not Message.objects.exists()


def test_an_unknown_processing_mode_is_refused_before_anything_is_written(gateways, settings):
    settings.SMSROUTER_PROCESSING = "threads"
    with pytest.raises(ConfigurationError, match="SMSROUTER_PROCESSING = 'threads'"):
        smsrouter.incoming("a", "+255700000001", "hi")
    assert not Message.objects.exists()


@pytest.mark.parametrize(("identity", "text"), [("", "hi"), (None, "hi"), ("+2557", None)])
def test_bad_arguments_are_refused_before_anything_is_written(gateways, identity, text):
    with pytest.raises(ValueError):
        smsrouter.incoming("a", identity, text)
    assert not Message.objects.exists()


def test_an_empty_text_is_a_valid_sms(gateways):
    assert smsrouter.incoming("a", "+255700000001", "").text == ""


def test_backend_and_connection_are_cached_once_committed(
    gateways, django_assert_num_queries, django_capture_on_commit_callbacks
):
    """After the first committed message, a number costs no lookup: insert + update only."""
    with django_capture_on_commit_callbacks(execute=True):
        smsrouter.incoming("a", "+255700000001", "no reply")
    with django_assert_num_queries(2):
        smsrouter.incoming("a", "+255700000001", "no reply either")


def test_rows_of_a_transaction_that_did_not_commit_are_not_cached(gateways):
    """Until on_commit fires, each message looks its connection up again."""
    smsrouter.incoming("a", "+255700000001", "hi")
    Connection.objects.all().delete()
    smsrouter.incoming("a", "+255700000001", "hi")
    assert Connection.objects.count() == 1


def test_deleting_a_connection_evicts_it_from_the_cache(gateways, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        smsrouter.incoming("a", "+255700000001", "hi")
    Connection.objects.all().delete()
    msg = smsrouter.incoming("a", "+255700000001", "hi")
    assert Connection.objects.get().pk == msg.connection.pk


def test_send_to_identities_is_one_backend_call(gateways, django_capture_on_commit_callbacks):
    """Several recipients on one backend are handed over in one send() call."""
    with django_capture_on_commit_callbacks(execute=True):
        sent = smsrouter.send("meeting at 10", ["+255700000001", "+255700000002"], backend="a")
    assert [(m.connection.identity, m.status) for m in sent] == [
        ("+255700000001", "sent"), ("+255700000002", "sent")]
    assert gateways == [("a", [("+255700000001", "meeting at 10"), ("+255700000002", "meeting at 10")])]
    assert all(m.id and m.in_response_to is None for m in sent)


def test_a_reply_is_sent_only_once_its_transaction_commits(gateways, django_capture_on_commit_callbacks):
    """A caller's transaction that rolls back takes the reply with it, unsent."""
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            msg = smsrouter.incoming("a", "+255700000001", "echo hi")
            # Claimed for this caller, which sends it once committed: nobody else's to send.
            assert gateways == [] and msg.responses[0].status == "sending"
    assert gateways == [("a", [("+255700000001", "hi")])]
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            smsrouter.incoming("a", "+255700000001", "echo bye")
            transaction.set_rollback(True)
    assert len(gateways) == 1 and not Message.objects.filter(text__contains="bye").exists()


def test_a_scheduled_send_waits_queued_for_a_sender(gateways, django_capture_on_commit_callbacks):
    """Without a scheduler in the process, nothing sends it early: smsrouter_sender will."""
    later = timezone.now() + timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=True):
        (message,) = smsrouter.send("tomorrow", "+1", backend="a", at=later)
    assert gateways == [] and message.status == "queued"
    assert Message.objects.get().due_at == later


def test_send_to_connections_groups_by_their_backends(gateways, django_capture_on_commit_callbacks):
    """Connections carry their backend; one call per backend."""
    on_a = smsrouter.incoming("a", "+1", "no reply").connection
    on_b = smsrouter.incoming("b", "+2", "no reply").connection
    with django_capture_on_commit_callbacks(execute=True):
        smsrouter.send("hello", [on_a, on_b, Connection.objects.get(pk=on_a.pk)])
    assert sorted(gateways) == [("a", [("+1", "hello"), ("+1", "hello")]), ("b", [("+2", "hello")])]


def test_send_to_a_connection_on_another_backend_is_refused(gateways):
    on_a = smsrouter.incoming("a", "+1", "no reply").connection
    with pytest.raises(ValueError, match="on backend 'a', not 'b'"):
        smsrouter.send("hello", on_a, backend="b")


def test_send_needs_a_backend_when_several_are_configured(gateways):
    with pytest.raises(ValueError, match="needs backend="):
        smsrouter.send("hello", "+255700000001")
    assert not Message.objects.exists()


def test_send_uses_the_only_backend_when_there_is_one(gateways, settings):
    settings.INSTALLED_BACKENDS = {"only": {"ENGINE": RECORDING}}
    (message,) = smsrouter.send("hello", "+255700000001")
    assert message.connection.backend.name == "only"


def test_send_to_an_unknown_backend_writes_nothing(gateways):
    with pytest.raises(UnknownBackend):
        smsrouter.send("hello", "+255700000001", backend="nope")
    assert not Message.objects.exists()


def test_send_to_nobody_sends_nothing(gateways):
    assert smsrouter.send("hello", [], backend="a") == []


def test_a_backend_that_raises_fails_its_messages_not_the_caller(
    gateways, settings, django_capture_on_commit_callbacks
):
    """The error is kept on each message; the caller gets the statuses. (With attempts
    left, the messages would be queued again: see test_sender.py.)"""
    settings.SMSROUTER_SEND_MAX_ATTEMPTS = 1
    with django_capture_on_commit_callbacks(execute=True):
        sent = smsrouter.send("hello", ["+1", "+2"], backend="down")
    assert [m.status for m in sent] == ["failed", "failed"]
    assert {m.error for m in Message.objects.all()} == {"gateway answered 503"}


def test_one_down_backend_does_not_stop_another(gateways, settings, django_capture_on_commit_callbacks):
    settings.SMSROUTER_SEND_MAX_ATTEMPTS = 1
    on_a = smsrouter.incoming("a", "+1", "no reply").connection
    on_down = smsrouter.incoming("down", "+2", "no reply").connection
    with django_capture_on_commit_callbacks(execute=True):
        sent = smsrouter.send("hello", [on_a, on_down])
    assert [m.status for m in sent] == ["sent", "failed"]


def test_a_backend_may_fail_single_messages(gateways, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sent = smsrouter.send("hello", ["+255700000001", "0700000002"], backend="picky")
    assert [(m.status, m.error) for m in sent] == [("sent", ""), ("failed", "rejected number")]
    assert Message.objects.get(connection__identity="0700000002").status == Status.FAILED


@pytest.mark.django_db(transaction=True)
def test_the_async_twins(gateways):
    """aincoming() and asend() do the same from a coroutine."""

    async def scenario():
        msg = await smsrouter.aincoming("a", "+1", "echo async")
        sent = await smsrouter.asend("later", "+1", backend="a")
        return msg, sent

    msg, sent = async_to_sync(scenario)()
    assert [r.text for r in msg.responses] == ["async"]
    assert [m.status for m in sent] == ["sent"]
    assert Message.objects.count() == 3


def test_a_deferred_message_stays_queued(gateways, settings, django_capture_on_commit_callbacks):
    """A backend that can send only from the process holding its link leaves it queued."""
    settings.INSTALLED_BACKENDS = {"bound-elsewhere": {"ENGINE": "tests.backends.DefersBackend"}}
    with django_capture_on_commit_callbacks(execute=True):
        (message,) = smsrouter.send("hello", "+1", backend="bound-elsewhere")
    assert message.status == "queued"
    assert Message.objects.get().status == "queued"
