"""The demo's dialogue (issue 15), through the demo's own apps and settings: REGISTER,
HELP mid-session, STOP and START, LANG; in inline mode here, by a worker in Celery mode."""

import urllib.parse
import urllib.request

import pytest

import smsrouter
from smsrouter import inbound
from smsrouter.contrib.conversations.models import Answer, Session
from smsrouter.models import Connection, Message

PHONE = "+255700000001"
REGISTERED = "Thanks Amina, you are registered."


def say(sms, text):
    return sms.receive(text, identity=PHONE).texts()


def test_register_asks_a_name_and_an_age_and_links_a_contact(sms):
    assert say(sms, "REGISTER") == ["What is your name?"]
    assert say(sms, "Amina") == ["How old are you, Amina?"]
    assert say(sms, "abc") == ["Please send your age as a number."]
    assert Session.objects.get().step == "age"
    assert say(sms, "34") == [REGISTERED]
    session = Session.objects.get()
    assert (session.status, session.answers) == ("done", {"name": "Amina", "age": 34})
    assert sorted(Answer.objects.values_list("step", "value")) == [("age", 34), ("name", "Amina")]
    assert Connection.objects.get(identity=PHONE).contact.name == "Amina"


def test_the_demo_keeps_its_commands(sms):
    assert say(sms, "echo hi") == ["hi"]
    assert say(sms, "join Juma") == ["Thank you Juma, you are registered."]
    assert say(sms, "add 2 3") == ["2 + 3 = 5"]
    assert say(sms, "what?") == ["Sorry, I didn't understand. Try: ECHO <text>, PING, JOIN <name> or ADD 2 3."]


def test_help_mid_session_leaves_it_where_it_was_and_stop_cancels_it(sms):
    say(sms, "REGISTER")
    say(sms, "Amina")
    [help_text] = say(sms, "HELP")
    assert all(word in help_text for word in ("REGISTER", "STOP", "LANG"))
    assert say(sms, "34") == [REGISTERED]
    say(sms, "REGISTER")
    assert say(sms, "STOP") == ["You will receive no more messages. Send START to subscribe again."]
    session = Session.objects.get(status__in=["active", "cancelled"])
    assert (session.status, session.closed_at_step) == ("cancelled", "name")
    [sent] = sms.send("news", Connection.objects.get(identity=PHONE))
    assert sent.status == "failed" and "opted out" in sent.error
    assert say(sms, "START") == ["Welcome back. You will receive messages again."]
    assert say(sms, "REGISTER") == ["What is your name?"]  # a new session, not the cancelled one


def test_lang_sw_asks_in_swahili_and_lang_en_switches_back(sms):
    say(sms, "REGISTER")
    say(sms, "Amina")
    say(sms, "34")  # a Contact now, whose language LANG sets
    [confirmation] = say(sms, "LANG sw")
    assert confirmation != say(sms, "LANG en")[0]
    say(sms, "LANG sw")
    assert say(sms, "REGISTER") == ["Jina lako ni nani?"]
    say(sms, "Amina")
    say(sms, "LANG en")
    assert say(sms, "x") == ["Please send your age as a number."]


def test_the_dialogue_in_celery_mode(db, queued, settings):
    """A worker routes each message in its claim transaction, the session locked there."""
    from demo import settings as demo

    settings.SMSROUTER_APPS = demo.SMSROUTER_APPS
    replies = []
    for text in ["REGISTER", "Amina", "abc", "34"]:
        msg = smsrouter.incoming("gw", PHONE, text)
        assert inbound.route_ids([msg.id]) == 1
        replies += Message.objects.filter(in_response_to=msg.id).values_list("text", flat=True)
    assert replies == ["What is your name?", "How old are you, Amina?",
                       "Please send your age as a number.", REGISTERED]
    assert Connection.objects.get(identity=PHONE).contact.name == "Amina"


@pytest.mark.parametrize("text", ["register", " Register ", "REGISTER,"])
def test_the_trigger_is_a_keyword(sms, text):
    assert say(sms, text) == ["What is your name?"]


@pytest.mark.processes
def test_the_dialogue_in_celery_mode_with_real_processes(tmp_path, gateway):
    """A web server that only stores, a Celery worker that routes and sends, on PostgreSQL
    and Redis: each answer is posted once the reply to the one before reached the gateway,
    as a person would answer, and each is taken by the session in the database."""
    from tests.stack import Stack

    stack = Stack(tmp_path, processing="celery", gateway_url=gateway.url,
                  settings="tests.dialogue_settings")
    try:
        base = stack.start_web()
        stack.start_celery_worker()
        expected = ["What is your name?", "How old are you, Amina?",
                    "Please send your age as a number.", REGISTERED]
        for n, text in enumerate(["REGISTER", "Amina", "abc", "34"], start=1):
            data = urllib.parse.urlencode({"from": PHONE, "text": text}).encode()
            with urllib.request.urlopen(f"{base}/backend/gw/", data, timeout=30) as response:
                assert response.status == 200
            stack.wait_until(lambda: len(gateway.requests), lambda seen, n=n: seen >= n, 30,
                             f"the reply to {text!r}")
        assert [seen.form()["text"] for seen in gateway.requests] == expected
        assert stack.query("SELECT status, closed_at_step FROM conversations_session") == [
            ("done", "age")]
        assert stack.query("SELECT name FROM smsrouter_contact") == [("Amina",)]
    finally:
        stack.close()
