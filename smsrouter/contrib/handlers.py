"""Keyword and pattern handlers: the quickest way to answer a command by SMS.

A handler is listed in SMSROUTER_APPS like an App; `as_app()` adapts it, so the router
needs to know nothing about handlers. Handlers are synchronous (they may use the ORM);
for an `async def` reply, write an App.
"""

from __future__ import annotations

import inspect
import re
from typing import TYPE_CHECKING, Any, ClassVar

from smsrouter.exceptions import ConfigurationError
from smsrouter.router import App, Router

if TYPE_CHECKING:
    from smsrouter.messages import IncomingMessage, OutgoingMessage

SEPARATORS = r"[\s,;:]+"


def keyword_pattern(keyword: str) -> re.Pattern[str]:
    """`keyword` as a whole word at the start, then separators and the rest of the text.

    `keyword` may hold alternatives ("register|reg"). A keyword glued to other letters
    ("hellothere") is not a match.
    """
    return re.compile(
        rf"^\s*(?:{keyword})(?:{SEPARATORS}(?P<rest>.*?))?[\s,;:]*$",
        re.IGNORECASE | re.DOTALL,
    )


class BaseHandler:
    """A handler answers one kind of message. One instance serves one message."""

    def __init__(self, router: Router, msg: IncomingMessage) -> None:
        self.router = router
        self.msg = msg

    def respond(self, text: str) -> OutgoingMessage:
        return self.msg.respond(text)

    @classmethod
    def match(cls, text: str) -> tuple[str, tuple[str, ...]] | None:
        """The method to call and its arguments, or None if the text is not for this handler."""
        raise NotImplementedError(f"{cls.__name__} must implement match().")

    @classmethod
    def dispatch(cls, router: Router, msg: IncomingMessage) -> bool:
        """Handle `msg` if it matches; True when it did."""
        if (found := cls.match(msg.text)) is None:
            return False
        method, args = found
        getattr(cls(router, msg), method)(*args)
        return True

    @classmethod
    def as_app(cls) -> type[App]:
        """An App class whose handle phase dispatches to this handler."""
        for method in ("handle", "help"):
            if inspect.iscoroutinefunction(getattr(cls, method, None)):
                raise ConfigurationError(
                    f"{cls.__module__}.{cls.__qualname__}.{method}() is async; handlers are "
                    "synchronous. Write an App with `async def handle(self, msg)` instead."
                )

        def handle(app: App, msg: IncomingMessage) -> bool:
            return cls.dispatch(app.router, msg)

        return type(cls.__name__, (App,), {"handle": handle,
                                           "__module__": cls.__module__,
                                           "__qualname__": cls.__qualname__})


class KeywordHandler(BaseHandler):
    """Answers messages that start with `keyword`: `handle(rest)`, or `help()` when alone.

    ``keyword = "join"`` takes "join Amina", "JOIN: Amina" and " join,Amina"; "join"
    alone calls help(); "joiner" is not for this handler.
    """

    keyword: ClassVar[str]
    _pattern: ClassVar[re.Pattern[str]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "keyword" in cls.__dict__:
            cls._pattern = keyword_pattern(cls.keyword)

    @classmethod
    def match(cls, text: str) -> tuple[str, tuple[str, ...]] | None:
        if not hasattr(cls, "_pattern"):
            raise ConfigurationError(f"{cls.__qualname__} must set `keyword`.")
        if (found := cls._pattern.match(text)) is None:
            return None
        rest = found.group("rest")
        return ("handle", (rest,)) if rest else ("help", ())

    def help(self) -> None:
        """Answer the keyword sent alone; override to explain what to send."""
        raise NotImplementedError(f"{type(self).__name__} must implement help().")

    def handle(self, text: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement handle(text).")


class PatternHandler(BaseHandler):
    """Answers messages that match `pattern` in full (case-insensitive): `handle(*groups)`."""

    pattern: ClassVar[str]
    _regex: ClassVar[re.Pattern[str]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "pattern" in cls.__dict__:
            cls._regex = re.compile(cls.pattern, re.IGNORECASE | re.DOTALL)

    @classmethod
    def match(cls, text: str) -> tuple[str, tuple[str, ...]] | None:
        if not hasattr(cls, "_regex"):
            raise ConfigurationError(f"{cls.__qualname__} must set `pattern`.")
        if (found := cls._regex.fullmatch(text.strip())) is None:
            return None
        return "handle", found.groups()

    def handle(self, *groups: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement handle(*groups).")
