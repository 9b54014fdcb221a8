"""Which language each person is spoken to in, and texts rendered in it.

As in RapidSMS, a Contact has a language, and what is said to its connections goes
through Django's translation machinery in that language. A message is routed under
`translation.override()` of its sender's language, so that the `gettext` an app calls
while routing already answers in it. A lazy text (`gettext_lazy`: a reply, the default
response, a `send()` to many people) stays lazy until the outbox stores it, and is
rendered then in its recipient's language, so that what is stored, counted in segments
and sent is the translated text.

A number without a contact, or a contact without a language, is spoken to in the
project's LANGUAGE_CODE: never in whatever language the thread has active, which in
the httptester's request is the browser's, not the phone's.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from smsrouter import addressbook
from smsrouter.models import Connection, Contact

if TYPE_CHECKING:
    from smsrouter.messages import OutgoingMessage

#: What apps may reply or send: a str, or a lazy text rendered per recipient.
Text = str | Promise

CHUNK = 500

CONFIRMATION = _("OK, you will now receive messages in %(language)s.")
MISSING_CODE = _("Send LANG and one of: %(codes)s.")
UNKNOWN_CODE = _("Unknown language %(code)s. Send LANG and one of: %(codes)s.")


def language_of(connection: Connection) -> str | None:
    """The language of the connection's contact, or None.

    Read from the database each time (one query, by primary key) rather than from
    `connection.contact`, which the process-wide Connection cache would keep stale after
    a LANG handled elsewhere; a connection with no contact costs no query. Its
    `contact_id` is trusted: the INSERT of each inbound message reads it afresh
    (smsrouter.statements), so a contact linked by another process is seen.
    """
    if connection.contact_id is None:
        return None
    language = Contact.objects.filter(pk=connection.contact_id).values_list("language", flat=True).first()
    return language or None


def language_for(connection: Connection) -> str:
    """The language to speak to this connection in: its contact's, else the project's."""
    return language_of(connection) or settings.LANGUAGE_CODE


def rendered(text: Text, language: str | None = None) -> str:
    """A lazy text as a str, in `language` (None: the active one); a str as it is.

    Anything else is given back as it is, for the outbox to refuse with its own error.
    """
    if not isinstance(text, Promise):
        return text
    if language is None:
        return str(text)
    with translation.override(language):
        return str(text)


def render(messages: Iterable["OutgoingMessage"]) -> None:
    """Render the messages' lazy texts in the active language: replies, while routing
    under their recipient's language."""
    for message in messages:
        message.text = rendered(message.text)


def render_for_recipients(text: Text, messages: Sequence["OutgoingMessage"]) -> None:
    """Give each message `text` rendered in its recipient's language: once per language,
    with one query per CHUNK contacts, and none for a str."""
    if not isinstance(text, Promise):
        return
    contact_ids = list({msg.connection.contact_id for msg in messages} - {None})
    languages: dict[int, str] = {}
    for start in range(0, len(contact_ids), CHUNK):
        languages.update(Contact.objects.filter(pk__in=contact_ids[start:start + CHUNK])
                         .exclude(language="").values_list("pk", "language"))
    by_language: dict[str, list[OutgoingMessage]] = defaultdict(list)
    for msg in messages:
        by_language[languages.get(msg.connection.contact_id, settings.LANGUAGE_CODE)].append(msg)
    for language, group in by_language.items():
        text_there = rendered(text, language)
        for msg in group:
            msg.text = text_there


def available() -> list[str]:
    """The codes LANG accepts: those of settings.LANGUAGES, in their order."""
    return [code for code, _name in settings.LANGUAGES]


def set_language(connection: Connection, code: str | None) -> str:
    """Speak to this connection in `code` from now on; the confirmation, in that language.

    The language belongs to the connection's contact; a number with none gets a new,
    nameless Contact, linked to it, so that LANG works before any registration (which
    should then name this contact rather than make another). Only codes of
    settings.LANGUAGES are taken, whatever their case: for any other, or none, this
    raises ValueError whose message is the reply, in the active language, listing them.
    """
    wanted = (code or "").strip().lower().replace("_", "-")
    codes = available()
    by_lower = {known.lower(): known for known in codes}
    if wanted not in by_lower:
        listed = ", ".join(codes)
        if not wanted:
            raise ValueError(str(MISSING_CODE) % {"codes": listed})
        raise ValueError(str(UNKNOWN_CODE) % {"code": wanted[:10], "codes": listed})
    language = by_lower[wanted]
    addressbook.update_contact(connection, language=language)
    with translation.override(language):
        return str(CONFIRMATION) % {"language": _name_of(language)}


def _name_of(code: str) -> str:
    """The language's name in itself ("Kiswahili"), or as settings.LANGUAGES names it."""
    try:
        return translation.get_language_info(code)["name_local"]
    except KeyError:
        return str(dict(settings.LANGUAGES)[code])
