"""Opt-out: after STOP nothing but the STOP and START confirmations goes to the number,
whichever way a message is made or sent and whatever a process's cached row says."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.db import connection as db
from django.utils import timezone

import smsrouter
from smsrouter import addressbook, connectionrow, inbound, keywords, sender
from smsrouter.models import OPTED_OUT, Connection, Message
from smsrouter.signals import opted_out

pytestmark = pytest.mark.django_db

STOP = str(keywords.STOP_TEXT)
START = str(keywords.START_TEXT)
NUMBER = "+15550000001"


@pytest.fixture(autouse=True)
def replies(settings):
    settings.SMSROUTER_APPS = []
    settings.SMSROUTER_DEFAULT_RESPONSE = "default"
    settings.SMSROUTER_HELP = None


def outgoing():
    return list(Message.objects.filter(direction="out").order_by("pk")
                .values_list("connection__identity", "text", "status", "error", "attempts"))


def refused(identity, text):
    return (identity, text, "failed", OPTED_OUT, 0)


def stop_elsewhere(identity=NUMBER):
    """What another process's STOP leaves: the row opted out, this process's cache unaware."""
    Connection.objects.filter(identity=identity).update(opted_out_at=timezone.now())


def test_a_reply_to_an_opted_out_number_is_stored_failed_and_not_sent(sms):
    sms.receive("STOP")
    sms.receive("hello")
    assert sms.outbox.texts() == [STOP]
    assert outgoing()[1] == refused(NUMBER, "default")
    assert "opted out" in OPTED_OUT


def test_send_to_an_opted_out_number_is_failed_and_no_gateway_is_called(sms):
    sms.receive("STOP")
    (msg,) = sms.send("news", NUMBER, backend="test")
    assert (msg.status, msg.error) == ("failed", OPTED_OUT)
    assert sms.outbox.texts() == [STOP]


def test_a_bulk_send_skips_only_the_opted_out_numbers(sms):
    sms.receive("STOP", "+15550000002")
    sent = sms.send("news", ["+15550000001", "+15550000002", "+15550000003"], backend="test")
    assert [m.status for m in sent] == ["sent", "failed", "sent"]
    assert [(m.connection.identity, m.text) for m in sms.outbox] == [
        ("+15550000002", STOP), ("+15550000001", "news"), ("+15550000003", "news")]


def test_start_opts_back_in(sms):
    sms.receive("STOP")
    assert sms.receive("START").texts() == [START]
    (msg,) = sms.send("news", NUMBER, backend="test")
    assert msg.status == "sent"
    assert sms.outbox.texts() == [STOP, START, "news"]


def test_the_confirmations_alone_are_exempt(sms):
    sms.receive("STOP")
    sms.receive("help")
    sms.receive("START")
    rows = outgoing()
    assert [row[1:3] for row in rows] == [(STOP, "sent"), (str(keywords.HELP_TEXT), "failed"),
                                          (START, "sent")]
    assert [m.record.fields.get(connectionrow.EXEMPT) for m in sms.outbox] == ["stop", "start"]


def test_a_stale_cached_row_sends_nothing_when_the_database_says_opted_out(sms):
    sms.receive("hello")  # the Connection is now cached in this process
    cached = addressbook.get_connection("test", NUMBER)
    stop_elsewhere()
    assert cached.opted_out_at is None  # stale
    (msg,) = sms.send("news", NUMBER, backend="test")
    sms.receive("hello again")
    assert msg.status == "failed"
    assert outgoing()[1:] == [refused(NUMBER, "news"), refused(NUMBER, "default")]
    assert sms.outbox.texts() == ["default"]


# Rows queued for a sender (celery mode, as a worker or the sweep finds them).

def send_due(**kwargs):
    return async_to_sync(sender.send_due)(**kwargs)


def test_a_row_queued_before_stop_and_claimed_after_is_failed_unsent(queued):
    (msg,) = smsrouter.send("news", NUMBER, backend="gw")
    assert Message.objects.get().status == "queued"
    stop_elsewhere()
    done = send_due(ids=[msg.id])
    assert (done.claimed, queued) == (0, [])
    assert outgoing() == [(NUMBER, "news", "failed", OPTED_OUT, 0)]


def test_a_scheduled_send_that_becomes_due_after_stop_is_failed_unsent(queued):
    smsrouter.send("reminder", NUMBER, backend="gw", at=timezone.now() + timedelta(hours=1))
    stop_elsewhere()
    assert send_due().claimed == 0
    assert outgoing()[0][2] == "queued"  # not due: left alone, a START may come first
    Message.objects.update(due_at=timezone.now())  # the clock moves on
    assert send_due().claimed == 0
    assert outgoing() == [refused(NUMBER, "reminder")]
    assert queued == []


def test_a_sender_handed_the_messages_claims_none_of_an_opted_out_number(queued):
    """The path of an in-process scheduler, handed the messages themselves."""
    sent = smsrouter.send("news", [NUMBER, "+15550000002"], backend="gw")
    stop_elsewhere()
    done = async_to_sync(sender.send)(sent)
    assert (done.claimed, [m.status for m in sent]) == (1, ["failed", "sent"])
    assert sent[0].error == OPTED_OUT
    assert queued == [("gw", [("+15550000002", "news")])]


def test_a_stop_confirmation_queued_for_a_worker_is_still_sent(queued):
    inbound.route_ids([smsrouter.incoming("gw", NUMBER, "STOP").id])  # as a worker does
    (row,) = Message.objects.filter(direction="out")
    assert send_due(ids=[row.pk]).sent == 1
    assert queued == [("gw", [(NUMBER, STOP)])]


def test_a_database_without_returning_gets_the_same_answers(queued, monkeypatch):
    """As MySQL: the ORM decides, with a query of its own."""
    monkeypatch.setattr(type(db.features), "can_return_rows_from_bulk_insert", False)
    early = smsrouter.send("early", [NUMBER, "+15550000002"], backend="gw")
    stop_elsewhere()
    (late,) = smsrouter.send("late", NUMBER, backend="gw")
    assert (late.status, late.error) == ("failed", OPTED_OUT)
    assert send_due(ids=[m.id for m in early]).claimed == 1
    assert [row[2] for row in outgoing()] == ["failed", "sent", "failed"]


# A gateway that says the number opted out: Twilio's 21610.

UNSUBSCRIBED = {"code": 21610, "message": "Attempt to send to unsubscribed recipient",
                "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400}


@pytest.fixture
def twilio(settings, gateway):
    settings.SMSROUTER_PROCESSING = "inline"
    settings.INSTALLED_BACKENDS = {"twilio": {
        "ENGINE": "smsrouter.backends.twilio.TwilioBackend", "account_sid": "AC" + "0" * 32,
        "auth_token": "secret", "from_number": "+15005550006", "api_url": gateway.url}}
    return gateway


def test_twilio_21610_fails_the_message_for_good_and_opts_the_number_out(
        twilio, django_capture_on_commit_callbacks):
    heard = []

    def receiver(sender, connection, message, **kwargs):
        heard.append((connection.identity, message))

    twilio.answer(400, json.dumps(UNSUBSCRIBED), headers={"Content-Type": "application/json"})
    opted_out.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            (first,) = smsrouter.send("news", NUMBER, backend="twilio")
    finally:
        opted_out.disconnect(receiver)
    assert (first.status, first.record.attempts) == ("failed", 1)
    assert "Twilio error 21610" in first.error
    assert Connection.objects.get(identity=NUMBER).opted_out_at is not None
    assert heard == [(NUMBER, None)]
    with django_capture_on_commit_callbacks(execute=True):
        (second,) = smsrouter.send("more news", NUMBER, backend="twilio")
    assert (second.status, second.error) == ("failed", OPTED_OUT)
    assert len(twilio.requests) == 1


def test_an_opted_out_outcome_must_be_a_permanent_error():
    from smsrouter.backends.base import Outcome

    with pytest.raises(ValueError, match="permanent error"):
        Outcome(opted_out=True)
    with pytest.raises(ValueError, match="permanent error"):
        Outcome(error="later", temporary=True, opted_out=True)


# The admin and smsrouter_send.

def test_the_admin_shows_and_filters_opted_out_numbers(sms, admin_client):
    sms.receive("STOP", "+15550000001")
    sms.receive("hello", "+15550000002")
    page = "/admin/smsrouter/connection/"
    assert admin_client.get(page).status_code == 200
    listed = {answer: [c.identity for c in admin_client.get(page, {"opted_out": answer})
                       .context["cl"].result_list]
              for answer in ("yes", "no")}
    assert listed == {"yes": ["+15550000001"], "no": ["+15550000002"]}
    assert "opted_out_at" in admin_client.get(page).context["cl"].list_display


@pytest.mark.django_db(transaction=True)  # the command's sends go once committed
def test_smsrouter_send_counts_opted_out_numbers_as_skipped(queued, settings):
    settings.SMSROUTER_PROCESSING = "inline"
    smsrouter.send("hi", ["+15550000002", "+15550000003"], backend="gw")
    stop_elsewhere("+15550000002")
    stop_elsewhere("+15550000003")
    out = StringIO()
    with pytest.raises(Exception, match="No message was sent"):
        call_command("smsrouter_send", "+15550000002", "+15550000003", "+15550000003",
                     "--text", "hi", "--backend", "gw", stdout=out)
    lines = out.getvalue().split("\n", 1)[1].splitlines()
    assert lines == [
        "0 sent, 0 failed, 0 queued for later, 3 skipped (2 opted out).",
        ("Skipped: 1 number(s) given more than once (sent once), "
         "2 number(s) opted out (stored failed, not sent).")]
    out = StringIO()
    call_command("smsrouter_send", "+15550000001", "+15550000002", "--text", "hi",
                 "--backend", "gw", stdout=out)
    assert out.getvalue().split("\n", 1)[1].splitlines()[0] == (
        "1 sent, 0 failed, 0 queued for later, 1 skipped (opted out).")
