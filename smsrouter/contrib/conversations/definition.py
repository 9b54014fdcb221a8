"""How a conversation is written: a class with a trigger keyword and a list of Steps.

    class Survey(Conversation):
        trigger = "survey"
        steps = [
            Step("name", "What is your name?"),
            Step("age", "How old are you, {name}?", parse=int,
                 error="Please send your age as a number."),
        ]
        done = "Thank you, {name}."

Texts may be gettext_lazy texts; `{step}` fields are filled in with the answers so far,
once the text is rendered in the language the message is routed under. The definition
holds no state: everything about one person's run is a Session row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.signals import setting_changed
from django.db import transaction
from django.utils import timezone, translation
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from smsrouter import conf
from smsrouter.contrib.conversations import state
from smsrouter.contrib.conversations.models import SessionStatus
from smsrouter.contrib.handlers import keyword_pattern
from smsrouter.exceptions import ConfigurationError

if TYPE_CHECKING:
    from smsrouter.contrib.conversations.models import Session
    from smsrouter.messages import IncomingMessage
    from smsrouter.models import Connection

def setting(name: str) -> Any:
    """One of SMSROUTER_CONVERSATION*, whose defaults are in smsrouter.conf."""
    return conf.get(name)


def as_delta(value: float | timedelta | None) -> timedelta | None:
    """A timedelta from a timedelta or seconds; None stays None (never)."""
    if value is None or isinstance(value, timedelta):
        return value
    return timedelta(seconds=value)


class _Blank(dict[str, Any]):
    """Answers for str.format_map: a field not answered yet comes out empty."""

    def __missing__(self, key: str) -> str:
        return ""


def render(text: Any, answers: dict[str, Any]) -> str:
    """`text` (lazy or not) in the active language, with `{step}` fields filled in."""
    return str(text).format_map(_Blank(answers))


@dataclass(frozen=True)
class Step:
    """One question and what it accepts.

    `parse` turns the text into the value stored (`int`, `float`, your own function) and
    raises ValueError for an answer it refuses; `choices` accepts one of these words,
    case-insensitively, and stores it as written here. `next` is the step after this one:
    by default the following one in the list; a step name; or a function of the answers
    so far that returns a step name, or None to finish.
    """

    name: str
    question: Any
    parse: Callable[[str], Any] | None = None
    choices: Sequence[str] = ()
    error: Any = None
    max_retries: int | None = None
    next: str | Callable[[dict[str, Any]], str | None] | None = None

    def clean(self, text: str) -> Any:
        """The value to store for this answer; ValueError if it is not acceptable."""
        text = text.strip()
        if not text:
            raise ValueError("empty answer")
        if self.choices:
            for choice in self.choices:
                if choice.casefold() == text.casefold():
                    return choice
            raise ValueError(f"not one of {list(self.choices)}")
        return self.parse(text) if self.parse is not None else text

    def error_text(self, answers: dict[str, Any]) -> str:
        if self.error is not None:
            return render(self.error, answers)
        if self.choices:
            return render(_("Please answer one of: {choices}."), {"choices": ", ".join(self.choices)})
        return str(_("Sorry, that answer is not valid. Please try again."))


class Conversation:
    """Subclass this: set `trigger` (or start it from code with `start()`) and `steps`.

    Override `finished()` to act on the answers (it runs in the routing transaction) and
    return the last reply; by default the reply is `done`, filled in with the answers.
    """

    #: Keyword(s) that start it, as for a KeywordHandler ("register|reg"); None: code only.
    trigger: ClassVar[str | None] = None
    steps: ClassVar[Sequence[Step]] = ()
    #: The reply once the last step is answered.
    done: ClassVar[Any] = ""
    #: The reply when a step has had more than its retries of invalid answers.
    gave_up: ClassVar[Any] = _("Sorry, that was not an answer we could use. Please start again later.")
    #: None: from the settings (SMSROUTER_CONVERSATION_*).
    max_retries: ClassVar[int | None] = None
    expire_after: ClassVar[float | timedelta | None] = None
    remind_after: ClassVar[float | timedelta | None] = None
    #: What a reminder says; None asks the question again.
    reminder: ClassVar[Any] = None

    _steps: ClassVar[dict[str, Step]]
    _trigger: ClassVar[re.Pattern[str] | None]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._steps = {step.name: step for step in cls.steps}
        if len(cls._steps) != len(cls.steps):
            raise ConfigurationError(f"{cls.__qualname__}: two steps have the same name.")
        cls._trigger = keyword_pattern(cls.trigger) if cls.trigger else None

    @classmethod
    def name(cls) -> str:
        """What sessions store to find this class again: its dotted path."""
        return f"{cls.__module__}.{cls.__qualname__}"

    @classmethod
    def step(cls, name: str) -> Step:
        return cls._steps[name]

    @classmethod
    def has_step(cls, name: str) -> bool:
        return name in cls._steps

    @classmethod
    def first_step(cls) -> Step:
        if not cls.steps:
            raise ConfigurationError(f"{cls.__qualname__} has no steps.")
        return cls.steps[0]

    @classmethod
    def next_step(cls, step: Step, answers: dict[str, Any]) -> Step | None:
        """The step after `step`, or None when the conversation is finished."""
        if step.next is None:
            index = list(cls._steps).index(step.name) + 1
            return cls.steps[index] if index < len(cls.steps) else None
        name = step.next(answers) if callable(step.next) else step.next
        return None if name is None else cls.step(name)

    @classmethod
    def triggered_by(cls, text: str) -> bool:
        return cls._trigger is not None and cls._trigger.match(text) is not None

    @classmethod
    def retries_allowed(cls, step: Step) -> int:
        for value in (step.max_retries, cls.max_retries):
            if value is not None:
                return value
        return setting("SMSROUTER_CONVERSATION_MAX_RETRIES")

    @classmethod
    def expiry(cls) -> timedelta:
        value = cls.expire_after if cls.expire_after is not None else setting("SMSROUTER_CONVERSATION_EXPIRE_AFTER")
        return as_delta(value)  # type: ignore[return-value]

    @classmethod
    def silence(cls) -> timedelta | None:
        """How long an unanswered question waits before the reminder; None: no reminder."""
        value = cls.remind_after if cls.remind_after is not None else setting("SMSROUTER_CONVERSATION_REMIND_AFTER")
        return as_delta(value)

    @classmethod
    def start(cls, connection: Connection) -> Session:
        """Start it from code (an outbound survey): the first question is sent to `connection`.

        An active session of the connection's, of any conversation, is cancelled first.
        """
        from smsrouter import languages
        from smsrouter.api import send

        now = timezone.now()
        with transaction.atomic():
            if (current := state.active(connection)) is not None:
                state.close(current, SessionStatus.CANCELLED, now)
            session = cls.open(connection, now)
            with translation.override(languages.language_for(connection)):
                send(render(cls.first_step().question, {}), connection)
        return session

    @classmethod
    def open(cls, connection: Connection, now: datetime) -> Session:
        """A new active session at the first step (IntegrityError if one is active)."""
        return state.open_session(connection, cls.name(), cls.first_step().name, now,
                                  cls.expiry(), cls.silence())

    @classmethod
    def touch(cls, session: Session, now: datetime) -> None:
        state.touch(session, now, cls.expiry(), cls.silence())

    def finished(self, session: Session, msg: IncomingMessage) -> str:
        """Called once the last answer is stored; returns the last reply ("" for none)."""
        return render(self.done, session.answers)


_listed: dict[str, type[Conversation]] | None = None


def listed() -> dict[str, type[Conversation]]:
    """SMSROUTER_CONVERSATIONS by name, imported once per process (again if it changes)."""
    global _listed
    if _listed is None:
        found = {}
        for path in setting("SMSROUTER_CONVERSATIONS"):
            try:
                conversation = import_string(path)
            except ImportError as exc:
                raise ConfigurationError(f"SMSROUTER_CONVERSATIONS: cannot import {path!r}: {exc}") from exc
            if not (isinstance(conversation, type) and issubclass(conversation, Conversation)):
                raise ConfigurationError(f"SMSROUTER_CONVERSATIONS: {path!r} is not a Conversation.")
            found[conversation.name()] = conversation
        _listed = found
    return _listed


def _reset(*, setting: str, **kwargs: Any) -> None:
    global _listed
    if setting == "SMSROUTER_CONVERSATIONS":
        _listed = None


setting_changed.connect(_reset, dispatch_uid="smsrouter-reset-conversations")
