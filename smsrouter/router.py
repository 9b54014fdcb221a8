"""The Router and the App base class.

A new Router routes each message: no global router, no route process, no threads of ours.
Routing is blocking code: it runs in the caller's thread (a worker thread under the ASGI
server, where concurrent webhooks share one trip), so a `def` phase may use the ORM and
costs no hop at all. An `async def` phase is awaited on the event loop through asgiref's
`async_to_sync`: the server's loop when the router runs in a thread the server lent,
a loop of its own in a shell or a worker. Which phases are `async def` is decided once,
when the app classes load, not for every message.

App instances have one lifetime per router: every message (and every outgoing batch of a
`send()`) gets a new Router, and so new app instances, whose attributes are that
message's scratch space. `activate()`, `deactivate()` and `resources` belong to another
instance, made once per server process by the ASGI lifespan; `@periodic` jobs run on a
fresh instance each time. State that must outlive a message belongs in the database.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from asgiref.sync import async_to_sync
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from smsrouter import conf
from smsrouter.exceptions import ConfigurationError

if TYPE_CHECKING:
    from smsrouter.messages import IncomingMessage, OutgoingMessage

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

PHASES = ("start", "filter", "parse", "handle", "default", "cleanup", "outgoing")


class App:
    """Subclass this and override only the phases you need.

    A phase may be `def` (it runs off the event loop, so it may use the ORM) or
    `async def` (awaited on the loop, so it must not block). Keep `async def` for phases
    that wait on the network: a `def` phase is a plain call, an `async def` one a trip
    to the event loop and back.

    A new instance serves each router, so one message's phases share its attributes;
    see the module docstring for the instances behind `activate()` and `resources`.
    """

    #: The `<app>` of `/res/<app>/<path>`; the class name in lower case when not set.
    label: ClassVar[str | None] = None
    #: Async HTTP handlers served at `/res/<label>/<path>`, ahead of Django's URLs:
    #: {path: name of an `async def handler(self, request) -> Response` method}.
    resources: ClassVar[dict[str, str]] = {}

    def __init__(self, router: Router) -> None:
        self.router = router

    @classmethod
    def get_label(cls) -> str:
        return cls.label or cls.__name__.lower()

    async def activate(self) -> None:
        """Once per server process, at ASGI lifespan startup, in the server's loop.

        Where an app opens what it keeps open (a TCP server, a connection); raise to stop
        the server from starting.
        """

    async def deactivate(self) -> None:
        """At lifespan shutdown: close what activate() opened."""

    def start(self) -> None:
        """Once per router, before the first message it routes."""

    def filter(self, msg: IncomingMessage) -> bool:
        """Return True to drop the message: no parse, handle or default; cleanup still runs."""
        return False

    def parse(self, msg: IncomingMessage) -> None:
        """Annotate `msg.fields` for the apps after this one."""

    def handle(self, msg: IncomingMessage) -> bool:
        """Return True when handled: later apps' handle() and the default phase are skipped."""
        return False

    def default(self, msg: IncomingMessage) -> bool:
        """Runs only if no app handled the message; True stops the default phase."""
        return False

    def cleanup(self, msg: IncomingMessage) -> None:
        """Always runs, even when a filter dropped the message or an app raised."""

    def outgoing(self, msg: OutgoingMessage) -> bool:
        """Return False to cancel this outgoing message. Apps run in reverse order."""
        return True


def periodic(every: float | timedelta) -> Callable[[F], F]:
    """Run this App method every `every` (seconds or a timedelta), once per period across
    all processes.

    RapidSMS's scheduler, the threadless way: the ASGI server's scheduler runs it in
    inline mode (or `manage.py smsrouter_sender`), Celery beat in celery mode, each
    on a fresh instance of the app; a lease row in the database lets one process
    take each period. It may be `def` or `async def`, and takes no arguments.
    """
    seconds = every.total_seconds() if isinstance(every, timedelta) else float(every)
    if seconds <= 0:
        raise ValueError(f"periodic(every={every!r}) must be a positive interval.")

    def mark(method: F) -> F:
        method.smsrouter_every = seconds  # type: ignore[attr-defined]
        return method

    return mark


def periodic_jobs(app_class: type[App]) -> list[tuple[str, float]]:
    """The app's periodic methods and their intervals in seconds."""
    return [
        (name, member.smsrouter_every)
        for name, member in inspect.getmembers(app_class)
        if hasattr(member, "smsrouter_every")
    ]


# What a phase answers when the app does not override it or raises: routing goes on as if
# the app had no opinion.
NEUTRAL: dict[str, Any] = {"filter": False, "handle": False, "default": False, "outgoing": True}


@dataclass(frozen=True)
class BoundApp:
    """An app class with, per phase, whether it is overridden and whether it is async."""

    app_class: type[App]
    kinds: dict[str, bool]  # phase -> is coroutine function; absent when not overridden

    @classmethod
    def of(cls, app_class: type[App]) -> BoundApp:
        kinds = {
            phase: inspect.iscoroutinefunction(getattr(app_class, phase))
            for phase in PHASES
            if getattr(app_class, phase) is not getattr(App, phase)
        }
        return cls(app_class, kinds)


def resolve_app(path: str) -> type[App]:
    """Import one SMSROUTER_APPS entry: an App subclass, or a handler that adapts itself."""
    try:
        obj = import_string(path)
    except ImportError as exc:
        raise ConfigurationError(f"SMSROUTER_APPS: cannot import {path!r}: {exc}") from exc
    if isinstance(obj, type) and issubclass(obj, App):
        return obj
    if isinstance(obj, type) and hasattr(obj, "as_app"):
        return obj.as_app()
    raise ConfigurationError(
        f"SMSROUTER_APPS: {path!r} is not a subclass of smsrouter.App or a handler."
    )


_loaded: list[BoundApp] | None = None


def loaded_apps() -> list[BoundApp]:
    """SMSROUTER_APPS, imported and bound once per process (again if the setting changes)."""
    global _loaded
    if _loaded is None:
        _loaded = [BoundApp.of(resolve_app(path)) for path in conf.get("SMSROUTER_APPS")]
    return _loaded


def _reset(*, setting: str, **kwargs: Any) -> None:
    global _loaded
    if setting == "SMSROUTER_APPS":
        _loaded = None


setting_changed.connect(_reset, dispatch_uid="smsrouter-reset-apps")


class Router:
    """Routes one message (or one batch of outgoing messages) through the apps.

    Blocking: call it from a thread, never from a running event loop's own thread.
    """

    def __init__(self, apps: Sequence[type[App]] | None = None) -> None:
        bound = loaded_apps() if apps is None else [BoundApp.of(app) for app in apps]
        self.apps = [(entry.app_class(self), entry.kinds) for entry in bound]
        self._started = False

    def incoming(self, msg: IncomingMessage) -> None:
        """Run the inbound phases. Apps' exceptions are logged, never raised."""
        from smsrouter import keywords  # loads models: not before the app registry is

        self._start(msg)
        try:
            if self._first_truthy("filter", msg):
                return
            for app, kinds in self.apps:
                self._call(app, kinds, "parse", msg)
            if keywords.handle(msg):  # STOP, START, HELP, LANG: before any app's handle
                return
            if self._first_truthy("handle", msg) or self._first_truthy("default", msg):
                return
            if response := conf.get("SMSROUTER_DEFAULT_RESPONSE"):
                msg.respond(response)
        finally:
            for app, kinds in self.apps:
                self._call(app, kinds, "cleanup", msg)

    def outgoing(self, msg: OutgoingMessage) -> str | None:
        """Run the outgoing phase, apps in reverse order; the name of a cancelling app, if any."""
        self._start(msg)
        for app, kinds in reversed(self.apps):
            if self._call(app, kinds, "outgoing", msg) is False:
                return type(app).__name__
        return None

    def _start(self, msg: IncomingMessage | OutgoingMessage) -> None:
        if not self._started:
            self._started = True
            for app, kinds in self.apps:
                self._call(app, kinds, "start", msg)

    def _first_truthy(self, phase: str, msg: IncomingMessage) -> bool:
        """Any truthy answer counts, as in RapidSMS: `return msg.respond(...)` handles."""
        for app, kinds in self.apps:
            if self._call(app, kinds, phase, msg):
                return True
        return False

    def _call(self, app: App, kinds: dict[str, bool], phase: str, msg: Any) -> Any:
        if phase not in kinds:
            return NEUTRAL.get(phase)
        method = getattr(app, phase)
        args = () if phase == "start" else (msg,)
        try:
            if kinds[phase]:
                return async_to_sync(method)(*args)
            return method(*args)
        except Exception:
            logger.exception("%s.%s() raised on message %s", type(app).__name__, phase, msg.id)
            return NEUTRAL.get(phase)
