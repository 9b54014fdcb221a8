"""Global keywords: STOP, START, HELP and LANG, answered before any app handles a message.

Carriers require that STOP and START work whatever else a number is doing, and RapidPro's
users' main complaint was a flow that swallowed them. So the Router runs `handle()` after
the apps' parse phase and before any app's handle(), hence before any conversation's
session: a matched message is handled (the apps' handle and default phases are skipped,
cleanup still runs). Each meaning has several words, in several languages
(SMSROUTER_KEYWORDS), matched on the first word whatever its case; a message that
matches none costs a split and a dict lookup, no query.

Opting out is decided by the database's row, not by this process's cached Connection:
STOP is an UPDATE that only a number not yet opted out passes (so one confirmation,
however many STOPs and processes), START the reverse; the outbox and the sender read
`opted_out_at` in their own statements (smsrouter.connectionrow).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.core.signals import setting_changed
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from smsrouter import conf, languages, signals
from smsrouter.exceptions import ConfigurationError
from smsrouter.messages import IncomingMessage, OutgoingMessage
from smsrouter.models import Connection

STOP, START, HELP, LANG = "stop", "start", "help", "lang"
STOP_TEXT = _("You will receive no more messages. Send START to subscribe again.")
START_TEXT = _("Welcome back. You will receive messages again.")
HELP_TEXT = _("Send STOP to receive no more messages, START to receive them again, "
              "HELP for this help.")
#: Characters a phone may put around a keyword ("Stop.", "HELP?") that do not change it.
PUNCTUATION = ".,;:!?¡¿\"'()[]*-"


class Confirmation(OutgoingMessage):
    """The answer to STOP or START: the one message sent to an opted-out number."""

    def __init__(self, keyword: str, text: str, msg: IncomingMessage) -> None:
        super().__init__(text, msg.connection, in_response_to=msg)
        #: The meaning it confirms, stored in the row's fields (connectionrow.EXEMPT).
        self.keyword = keyword


def handle(msg: IncomingMessage) -> bool:
    """Answer the message if its first word is a global keyword; whether it was one."""
    words = msg.text.split(maxsplit=2)
    if not words:
        return False
    meaning = _words().get(_folded(words[0]))
    if meaning is None:
        return False
    msg.fields["keyword"] = meaning
    _MEANINGS[meaning](msg, words[1:])
    return True


def opt_out(connections: Sequence[Connection], message: IncomingMessage | None = None) -> int:
    """Mark these numbers opted out (those not already) and send `signals.opted_out` for
    each; how many were not opted out before. For STOP, and for the sender when a gateway
    says a number opted out (`message` None)."""
    now = timezone.now()
    newly = Connection.objects.filter(
        pk__in=[c.pk for c in connections], opted_out_at__isnull=True).update(opted_out_at=now)
    for connection in connections:
        connection.opted_out_at = connection.opted_out_at or now
        signals.opted_out.send_robust(sender=Connection, connection=connection, message=message)
    return newly


def _stop(msg: IncomingMessage, rest: list[str]) -> None:
    if opt_out([msg.connection], msg):
        _confirm(msg, STOP, STOP_TEXT)


def _start(msg: IncomingMessage, rest: list[str]) -> None:
    Connection.objects.filter(pk=msg.connection.pk, opted_out_at__isnull=False).update(
        opted_out_at=None)
    msg.connection.opted_out_at = None
    _confirm(msg, START, START_TEXT)


def _help(msg: IncomingMessage, rest: list[str]) -> None:
    msg.respond(str(conf.get("SMSROUTER_HELP") or HELP_TEXT))


def _lang(msg: IncomingMessage, rest: list[str]) -> None:
    try:
        reply = languages.set_language(msg.connection, rest[0] if rest else "")
    except ValueError as refused:
        reply = str(refused)
    msg.respond(str(reply))


def _confirm(msg: IncomingMessage, keyword: str, text: Any) -> None:
    # Rendered now, in the language routing runs under (the contact's).
    msg.responses.append(Confirmation(keyword, str(text), msg))


_MEANINGS: dict[str, Callable[[IncomingMessage, list[str]], None]] = {
    STOP: _stop, START: _start, HELP: _help, LANG: _lang}

_by_word: dict[str, str] | None = None


def _folded(word: str) -> str:
    return word.strip(PUNCTUATION).casefold()


def _words() -> dict[str, str]:
    """SMSROUTER_KEYWORDS as {folded word: meaning}, made once (again if it changes)."""
    global _by_word
    if _by_word is None:
        configured = conf.get("SMSROUTER_KEYWORDS")
        if (problem := configuration_problem(configured)) is not None:
            raise ConfigurationError(f"SMSROUTER_KEYWORDS {problem}.")
        _by_word = {_folded(word): meaning for meaning, words in configured.items()
                    for word in words}
    return _by_word


def configuration_problem(configured: Any) -> str | None:
    """What is wrong with a value of SMSROUTER_KEYWORDS, completing "SMSROUTER_KEYWORDS
    ..."; None when it is right. The system check (smsrouter.E140) and `_words()` ask the
    same question, so a project that passes the check never fails here."""
    if not isinstance(configured, dict):
        return f"must be a dict of {{meaning: [words]}}, not {type(configured).__name__}"
    if unknown := sorted(map(str, set(configured) - set(_MEANINGS))):
        return (f"has {', '.join(map(repr, unknown))}, which is not one of the meanings "
                f"{', '.join(map(repr, _MEANINGS))}")
    meaning_of: dict[str, str] = {}
    for meaning, words in configured.items():
        if not isinstance(words, (list, tuple)) or not all(isinstance(w, str) for w in words):
            return f"[{meaning!r}] must be a list of words"
        for word in words:
            folded = _folded(word)
            if not folded or len(word.split()) != 1:
                return (f"[{meaning!r}] has {word!r}: a keyword is one word, matched "
                        "against a message's first")
            if meaning_of.setdefault(folded, meaning) != meaning:
                return f"has {word!r} both for {meaning_of[folded]!r} and for {meaning!r}"
    return None


def _reset(*, setting: str, **kwargs: Any) -> None:
    global _by_word
    if setting == "SMSROUTER_KEYWORDS":
        _by_word = None


setting_changed.connect(_reset, dispatch_uid="smsrouter-reset-keywords")
