"""Languages: routing and replies in the contact's language, lazy texts rendered per
recipient, LANG's rules, and the bundled locale files."""

import ast
from gettext import GNUTranslations
from pathlib import Path

import pytest
from django.utils import translation
from django.utils.functional import lazy
from django.utils.translation import gettext, gettext_lazy

from smsrouter import App, languages, limits, outbox
from smsrouter.addressbook import get_connection
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Connection, Contact, Message

REQUIRED = "This field is required."  # Django's own catalogs translate it
REQUIRED_FR = "Ce champ est obligatoire."
REQUIRED_SW = "Sehemu hii inahitajika"
STOPPED = "You will receive no more messages. Send START to subscribe again."
LOCALE = Path(languages.__file__).resolve().parent / "locale"
DEMO_LOCALE = LOCALE.parent.parent / "demo" / "locale"


class EagerApp(App):
    """Translates while routing: gettext answers in the active language."""

    def handle(self, msg):
        return msg.respond(gettext(REQUIRED))


class LazyApp(App):
    """Replies with a lazy text, rendered when the reply is stored."""

    def handle(self, msg):
        return msg.respond(gettext_lazy(REQUIRED))


def _lengthy() -> str:
    """150 GSM-7 characters (one SMS) in English; 100 UCS-2 ones (two SMS) in French."""
    return "ê" * 100 if translation.get_language() == "fr" else "e" * 150


lengthy = lazy(_lengthy, str)


class LengthyApp(App):
    """Replies with a text whose length depends on the language it is rendered in."""

    def handle(self, msg):
        return msg.respond(lengthy())


@pytest.fixture(autouse=True)
def three_languages(settings):
    """The demo's three languages, whatever it configures; English by default."""
    settings.LANGUAGES = [("en", "English"), ("fr", "French"), ("sw", "Swahili")]
    settings.LANGUAGE_CODE = "en"


def speaking(identity: str, language: str, name: str = "") -> Connection:
    """The test backend's connection for `identity`, linked to a contact of that language."""
    connection = get_connection("test", identity)
    connection.contact = Contact.objects.create(name=name, language=language)
    connection.save(update_fields=["contact"])
    return connection


@pytest.mark.sms_apps("tests.test_languages.EagerApp")
def test_a_message_is_routed_in_its_contacts_language(sms):
    """gettext called while routing answers in the sender's contact's language."""
    speaking("+15550000002", "fr")
    speaking("+15550000003", "sw")
    assert sms.receive("hi", "+15550000002").texts() == [REQUIRED_FR]
    assert sms.receive("hi", "+15550000003").texts() == [REQUIRED_SW]


@pytest.mark.sms_apps("tests.test_languages.EagerApp")
def test_a_number_without_a_language_gets_the_projects_not_the_callers(sms, settings):
    """No contact, or a contact without a language: LANGUAGE_CODE, whatever the calling
    thread has active (an admin's browser language, say)."""
    speaking("+15550000002", "")
    with translation.override("sw"):
        assert sms.receive("hi").texts() == [REQUIRED]
        assert sms.receive("hi", "+15550000002").texts() == [REQUIRED]
    settings.LANGUAGE_CODE = "fr"
    assert sms.receive("hi").texts() == [REQUIRED_FR]


@pytest.mark.sms_apps("tests.test_languages.LazyApp")
def test_a_lazy_reply_is_stored_and_sent_in_its_recipients_language(sms):
    speaking("+15550000002", "fr")
    with translation.override("sw"):
        replies = sms.receive("hi", "+15550000002")
    assert replies.texts() == [REQUIRED_FR]
    assert Message.objects.get(pk=replies[0].id).text == REQUIRED_FR
    assert sms.outbox.texts() == [REQUIRED_FR]


@pytest.mark.sms_apps()
def test_the_default_response_may_be_lazy(sms, settings):
    """A lazy SMSROUTER_DEFAULT_RESPONSE comes out in each sender's language."""
    settings.SMSROUTER_DEFAULT_RESPONSE = gettext_lazy(REQUIRED)
    speaking("+15550000002", "sw")
    assert sms.receive("?", "+15550000002").texts() == [REQUIRED_SW]
    assert sms.receive("?").texts() == [REQUIRED]


def test_send_renders_a_lazy_text_in_each_recipients_language(sms):
    """One send() to a French, a Swahili and an unknown number: three languages."""
    french, swahili = speaking("+15550000002", "fr"), speaking("+15550000003", "sw")
    sent = sms.send(gettext_lazy(REQUIRED), [french, swahili, "+15550000004"], backend="test")
    assert [msg.text for msg in sent] == [REQUIRED_FR, REQUIRED_SW, REQUIRED]
    assert sorted(sms.outbox.texts()) == sorted([REQUIRED_FR, REQUIRED_SW, REQUIRED])
    stored = Message.objects.filter(pk__in=[msg.id for msg in sent]).order_by("pk")
    assert [row.text for row in stored] == [REQUIRED_FR, REQUIRED_SW, REQUIRED]


def test_concurrent_asends_render_per_recipient_too(sms):
    """asend()'s batch path (outbox.add_many), one lazy text per call."""
    french = speaking("+15550000002", "fr")
    made = outbox.add_many([(gettext_lazy(REQUIRED), [french, "+15550000004"], "test", None),
                            (gettext_lazy(REQUIRED), "+15550000003", "test", None)])
    assert [[msg.text for msg in messages] for messages in made] == [
        [REQUIRED_FR, REQUIRED], [REQUIRED]]


def test_a_plain_text_asks_no_language(db, django_assert_num_queries):
    """A str is sent as it is: the recipients' languages are not even looked up."""
    messages = [OutgoingMessage("hello", speaking("+15550000002", "fr"))]
    with django_assert_num_queries(0):
        languages.render_for_recipients("hello", messages)
    assert messages[0].text == "hello"


def test_a_text_neither_str_nor_lazy_is_still_refused(sms):
    with pytest.raises(ValueError, match="text must be a string, not int"):
        sms.send(42, "+15550000002")


@pytest.mark.sms_apps("tests.test_languages.LengthyApp")
def test_segments_are_counted_on_the_rendered_text(sms):
    """The same lazy text is one SMS in English and two in French."""
    speaking("+15550000002", "fr")
    english, french = sms.receive("hi")[0], sms.receive("hi", "+15550000002")[0]
    assert Message.objects.get(pk=english.id).segments == 1
    assert Message.objects.get(pk=french.id).segments == 2 == limits.segments("ê" * 100)
    sent = sms.send(lengthy(), [get_connection("test", "+15550000002"), "+15550000004"], backend="test")
    assert [Message.objects.get(pk=msg.id).segments for msg in sent] == [2, 1]


def test_language_of_costs_no_query_without_a_contact(db, django_assert_num_queries):
    connection = get_connection("test", "+15550000002")
    with django_assert_num_queries(0):
        assert languages.language_of(connection) is None
        assert languages.language_for(connection) == "en"
    connection.contact = Contact.objects.create(language="sw")
    assert languages.language_of(connection) == "sw"


def test_language_of_reads_the_contact_afresh(db):
    """A language changed elsewhere counts at once, though this connection object is an
    old copy (as the process-wide connection cache holds)."""
    connection = speaking("+15550000002", "fr")
    Contact.objects.filter(pk=connection.contact_id).update(language="sw")
    assert connection.contact.language == "fr"
    assert languages.language_of(connection) == "sw"


def test_set_language_links_a_new_contact_to_a_number_without_one(db):
    connection = get_connection("test", "+15550000002")
    languages.set_language(connection, "fr")
    contact = Connection.objects.get(pk=connection.pk).contact
    assert (contact.language, contact.name) == ("fr", "")
    assert connection.contact == contact
    assert Contact.objects.count() == 1


def test_set_language_changes_only_the_language_of_an_existing_contact(db):
    connection = speaking("+15550000002", "fr", name="Amina")
    languages.set_language(connection, " SW ")
    contact = Contact.objects.get()
    assert (contact.name, contact.language) == ("Amina", "sw")
    assert connection.contact.language == "sw"


def test_set_language_answers_in_the_new_language(db):
    connection = get_connection("test", "+15550000002")
    with translation.override("en"):
        assert languages.set_language(connection, "sw") == "Sawa, sasa utapokea ujumbe kwa Kiswahili."
        assert languages.set_language(connection, "fr") == (
            "D'accord, vous recevrez désormais les messages en français.")
        assert languages.set_language(connection, "en") == "OK, you will now receive messages in English."


@pytest.mark.parametrize("code", ["de", "xx", "", None])
def test_set_language_takes_only_the_configured_codes(db, code):
    """German is one of Django's languages, but not of settings.LANGUAGES here."""
    connection = get_connection("test", "+15550000002")
    with translation.override("en"), pytest.raises(ValueError, match="one of: en, fr, sw") as refused:
        languages.set_language(connection, code)
    if code:
        assert f"Unknown language {code}." in str(refused.value)
    assert Contact.objects.count() == 0
    assert Connection.objects.get(pk=connection.pk).contact_id is None


@pytest.mark.sms_apps("tests.test_languages.LazyApp")
def test_lang_switches_the_language_of_later_messages(sms):
    """LANG (a global keyword) confirms in the new language, and everything after it
    comes in that language; a refusal comes in the language in force."""
    assert sms.receive("LANG fr").texts() == [
        "D'accord, vous recevrez désormais les messages en français."]
    assert sms.receive("hi").texts() == [REQUIRED_FR]
    assert sms.receive("LANG zz").texts() == [
        "Langue inconnue : zz. Envoyez LANG suivi de : en, fr, sw."]
    assert sms.receive("LANG sw").texts() == ["Sawa, sasa utapokea ujumbe kwa Kiswahili."]
    assert sms.receive("hi").texts() == [REQUIRED_SW]
    sms.receive("LANG en")
    assert sms.receive("hi").texts() == [REQUIRED]


def _translated(po: Path) -> dict[str, str]:
    """The translated entries of a .po file: msgid to msgstr (plural forms and fuzzy
    entries, which msgfmt leaves out, aside)."""
    entries: dict[str, str] = {}
    key, parts, fuzzy = None, {"msgid": [], "msgstr": []}, False
    for line in [*po.read_text(encoding="utf-8").splitlines(), ""]:
        if line.startswith("#,") and "fuzzy" in line:
            fuzzy = True
        elif line.startswith(("msgid ", "msgstr ")):
            key, _, rest = line.partition(" ")
            parts[key] = [ast.literal_eval(rest)]
        elif line.startswith('"') and key:
            parts[key].append(ast.literal_eval(line))
        elif not line.strip() and key:
            msgid, msgstr = "".join(parts["msgid"]), "".join(parts["msgstr"])
            if msgid and msgstr and not fuzzy:
                entries[msgid] = msgstr
            key, parts, fuzzy = None, {"msgid": [], "msgstr": []}, False
    return entries


@pytest.mark.parametrize(("locale", "language", "at_least"), [
    (LOCALE, "en", 0), (LOCALE, "fr", 8), (LOCALE, "sw", 8), (DEMO_LOCALE, "fr", 6),
    (DEMO_LOCALE, "sw", 6)], ids=["smsrouter-en", "smsrouter-fr", "smsrouter-sw", "demo-fr", "demo-sw"])
def test_the_locale_files_ship_compiled_and_current(locale, language, at_least):
    """`make test` needs no gettext tools: each .po's .mo is committed beside it, and
    holds what the .po says (recompile after editing a .po)."""
    po = locale / language / "LC_MESSAGES" / "django.po"
    with po.with_suffix(".mo").open("rb") as mo:
        catalog = GNUTranslations(mo)._catalog  # type: ignore[attr-defined]
    translated = _translated(po)
    assert len(translated) >= at_least
    assert {msgid: catalog.get(msgid) for msgid in translated} == translated


@pytest.mark.parametrize(("language", "stopped"), [
    ("fr", "Vous ne recevrez plus de messages. Envoyez START pour vous réabonner."),
    ("sw", "Hutapokea ujumbe tena. Tuma START ili kujiunga tena."),
    ("en", STOPPED),
])
def test_the_bundled_texts_are_translated(language, stopped):
    with translation.override(language):
        assert gettext(STOPPED) == stopped


def test_the_demos_texts_are_translated():
    """demo/locale, through the demo's LOCALE_PATHS."""
    with translation.override("sw"):
        assert gettext("What is your name?") == "Jina lako ni nani?"
    with translation.override("fr"):
        assert gettext("Please send your age as a number.") == "Veuillez envoyer votre âge en chiffres."


def test_stop_and_start_confirm_in_the_contacts_language(sms):
    speaking("+15550000002", "sw")
    assert sms.receive("STOP", "+15550000002").texts() == [
        "Hutapokea ujumbe tena. Tuma START ili kujiunga tena."]
    assert sms.receive("start", "+15550000002").texts() == ["Karibu tena. Utapokea ujumbe tena."]


@pytest.mark.sms_apps("tests.test_languages.EagerApp")
def test_a_contact_linked_elsewhere_is_spoken_to_in_its_language(sms):
    """This process's cached Connection has no contact; the row has one, linked by
    another process, whose language is Swahili: the reply is in Swahili."""
    import smsrouter

    cached = get_connection("test", "+15550000002")
    Connection.objects.filter(pk=cached.pk).update(contact=Contact.objects.create(language="sw"))
    assert cached.contact_id is None
    msg = smsrouter.incoming("test", "+15550000002", "hi")
    assert msg.connection is cached
    assert [reply.text for reply in msg.responses] == [REQUIRED_SW]
