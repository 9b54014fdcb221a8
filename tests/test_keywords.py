"""Global keywords: STOP, START, HELP and LANG come before any app, in several words,
languages and cases, and a matched one is handled by them alone."""

import pytest

import smsrouter
from smsrouter import keywords, languages
from smsrouter.exceptions import ConfigurationError
from smsrouter.models import Connection, Message
from smsrouter.signals import opted_out

STOP = str(keywords.STOP_TEXT)
START = str(keywords.START_TEXT)

#: Each call of the Recorder's phases: (phase, text).
seen: list[tuple[str, str]] = []


class Recorder(smsrouter.App):
    """Takes every message it is given, and says which phases saw what."""

    def handle(self, msg):
        seen.append(("handle", msg.text))
        return msg.respond(f"handled {msg.text}")

    def default(self, msg):
        seen.append(("default", msg.text))
        return False

    def cleanup(self, msg):
        seen.append(("cleanup", msg.text))


RECORDER = "tests.test_keywords.Recorder"


@pytest.fixture(autouse=True)
def fresh(settings):
    seen.clear()
    settings.SMSROUTER_APPS = []
    settings.SMSROUTER_DEFAULT_RESPONSE = "default"
    settings.SMSROUTER_HELP = None


def opted_out_at(identity="+15550000001"):
    return Connection.objects.get(identity=identity).opted_out_at


@pytest.mark.parametrize("text", ["STOP", "stop", "Stop.", "  unsubscribe now", "arrêt",
                                  "ARRET", "Acha", "STOPALL"])
def test_stop_in_any_of_its_words_and_cases_opts_out_and_confirms(sms, text):
    assert sms.receive(text).texts() == [STOP]
    assert sms.outbox.texts() == [STOP]
    assert opted_out_at() is not None
    assert Message.objects.get(direction="in").fields["keyword"] == "stop"


@pytest.mark.parametrize("text", ["START", "start", "Unstop", "anza", "Démarrer"])
def test_start_in_any_of_its_words_opts_back_in_and_welcomes(sms, text):
    sms.receive("STOP")
    assert sms.receive(text).texts() == [START]
    assert opted_out_at() is None
    assert sms.outbox.texts() == [STOP, START]


def test_a_second_stop_gets_no_second_confirmation_but_the_signal_again(sms):
    heard = []

    def receiver(sender, connection, message, **kwargs):
        heard.append((sender, connection.identity, message.text))

    opted_out.connect(receiver)
    try:
        sms.receive("STOP")
        first = opted_out_at()
        assert sms.receive("stop").texts() == []
    finally:
        opted_out.disconnect(receiver)
    assert opted_out_at() == first
    assert sms.outbox.texts() == [STOP]
    assert heard == [(Connection, "+15550000001", "STOP"), (Connection, "+15550000001", "stop")]


@pytest.mark.parametrize("text", ["HELP", "help me", "Aide", "MSAADA?"])
def test_help_answers_the_default_help_text(sms, text):
    assert sms.receive(text).texts() == [str(keywords.HELP_TEXT)]
    assert "STOP" in str(keywords.HELP_TEXT) and "HELP" in str(keywords.HELP_TEXT)


def test_help_answers_smsrouter_help_when_set(sms, settings):
    settings.SMSROUTER_HELP = "Send REGISTER to register, STOP to stop, LANG sw for Swahili."
    assert sms.receive("help").texts() == [settings.SMSROUTER_HELP]


@pytest.mark.sms_apps(RECORDER)
def test_a_keyword_skips_the_apps_handle_and_default_but_not_cleanup(sms):
    sms.receive("HELP")
    sms.receive("STOP")
    assert seen == [("cleanup", "HELP"), ("cleanup", "STOP")]


@pytest.mark.sms_apps(RECORDER)
def test_help_leaves_the_next_message_to_whatever_would_have_taken_it(sms):
    assert sms.receive("hello").texts() == ["handled hello"]
    sms.receive("help")
    assert sms.receive("again").texts() == ["handled again"]
    assert [entry for entry in seen if entry[0] == "handle"] == [
        ("handle", "hello"), ("handle", "again")]


@pytest.mark.sms_apps(RECORDER)
def test_a_keyword_counts_only_as_the_first_word(sms):
    assert sms.receive("please stop").texts() == ["handled please stop"]
    assert sms.receive("stopwatch").texts() == ["handled stopwatch"]
    assert opted_out_at() is None


def test_the_words_are_configurable(sms, settings):
    settings.SMSROUTER_KEYWORDS = {"stop": ["HALT", "Ondoa"], "help": ["INFO"]}
    assert sms.receive("halt").texts() == [STOP]
    assert sms.receive("info", "+15550000002").texts() == [str(keywords.HELP_TEXT)]
    assert sms.receive("ONDOA", "+15550000003").texts() == [STOP]
    assert sms.receive("STOP", "+15550000004").texts() == ["default"]  # no longer a keyword
    assert opted_out_at("+15550000004") is None


def test_a_meaning_that_does_not_exist_is_a_configuration_error(sms, settings):
    settings.SMSROUTER_KEYWORDS = {"stop": ["STOP"], "subscribe": ["JOIN"]}
    with pytest.raises(ConfigurationError, match="SMSROUTER_KEYWORDS"):
        keywords.handle(type("Msg", (), {"text": "STOP", "fields": {}})())


@pytest.mark.parametrize("text, code", [("LANG sw", "sw"), ("lugha FR", "FR"),
                                        ("Langue", "")])
def test_lang_sets_the_language_through_languages_and_answers_its_text(
        sms, monkeypatch, text, code):
    """languages.set_language is helper 8's; here it is replaced, to see what it is given."""
    calls = []

    def set_language(connection, given):
        calls.append((connection.identity, given))
        return f"language {given}"

    monkeypatch.setattr(languages, "set_language", set_language)
    assert sms.receive(text).texts() == [f"language {code}"]
    assert calls == [("+15550000001", code)]


def test_lang_with_a_code_it_refuses_answers_the_refusal(sms, monkeypatch):
    def set_language(connection, code):
        raise ValueError(f"Unknown language {code!r}. Send LANG en, fr or sw.")

    monkeypatch.setattr(languages, "set_language", set_language)
    assert sms.receive("LANG xx").texts() == ["Unknown language 'xx'. Send LANG en, fr or sw."]
