"""The ASGI root: blocking Django and asynchronous resources in one server.

A project's asgi.py serves it with one call, which sets Django up first:

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from smsrouter.asgi import get_application
    application = get_application()

Django's own get_asgi_application() serves HTTP alone: no lifespan (so no sender and no
activation), no WebSocket, and under uvicorn no static files. `get_application()` is
`build_application(django_asgi_app)` around Django's handler, which gives Channels'
ProtocolTypeRouter with
* "http": apps' resources at /res/<app>/<path> first, then gateways' webhooks straight to
  their views (`smsrouter.webhooks`), then Django for everything else (so an unknown URL
  is Django's 404);
* "websocket": the httptester's live conversations, when that app is installed, behind
  Channels' AllowedHostsOriginValidator (a page of another site is refused before any
  consumer runs) and, with django.contrib.auth installed, AuthMiddlewareStack (the
  session's user in scope["user"], for consumers that apply the tester's rule);
* "channel": the workers of SMSROUTER_PROCESSING = "channels";
* "lifespan": ResourceLifespan, which activates apps and backends in the server's loop.

This module imports nothing that needs the app registry at its top, so that an asgi.py
may import it before Django is set up; what does is imported where it is used.
"""

import asyncio
import gc
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from channels.auth import AuthMiddlewareStack
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator, WebsocketDenier
from django.apps import apps as django_apps
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application
from django.urls import URLPattern, re_path

from smsrouter import loop
from smsrouter.resources import AppResourceRouter
from smsrouter.router import App, Router

if TYPE_CHECKING:
    from smsrouter.scheduler import Scheduler

logger = logging.getLogger(__name__)


class ResourceLifespan:
    """ASGI lifespan: activate apps and backends and start the scheduler (the sender of
    this process, see `smsrouter.scheduler`) at startup; stop them all at shutdown.

    Apps are instantiated once per server process here; their resources are served by the
    same instances. A failing activate() fails the startup with its reason.

    Once started, what the process has made so far (Django's modules, models and URLconf,
    the apps, the backends) lives as long as it serves, so it is frozen out of the cyclic
    garbage collector's sight (gc.freeze()), until shutdown. A full collection otherwise
    walks all of it while both threads wait, and so do the answers in flight: on uvicorn
    x1 at a fixed 1,000 msg/s, full collections took 53 to 135 ms each without it and 5 to
    92 ms with it (bench/README.md). The collector's thresholds, a policy of the process,
    are left alone.
    """

    def __init__(self, apps: dict[str, App]) -> None:
        self.apps = apps
        self.active: list[Any] = []
        self.scheduler: "Scheduler | None" = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    logger.exception("smsrouter startup failed")
                    await self.shutdown()
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        from smsrouter import dispatch
        from smsrouter.backends import backends
        from smsrouter.scheduler import Scheduler

        loop.set_server_loop(asyncio.get_running_loop())
        for app, _ in Router().apps:
            self.apps[app.get_label()] = app
            await self._activate(app, f"App {type(app).__name__}")
        for name in backends.names():
            await self._activate(backends[name], f"Backend {name!r}")
        self.scheduler = Scheduler(dispatch.server_duties())
        await self.scheduler.start()
        gc.collect()  # the garbage of start-up is freed, not frozen with the rest
        gc.freeze()

    async def _activate(self, target: App | Any, what: str) -> None:
        try:
            await target.activate()
        except Exception as exc:
            raise RuntimeError(f"{what}: activate() failed: {type(exc).__name__}: {exc}") from exc
        self.active.append(target)

    async def shutdown(self) -> None:
        gc.unfreeze()  # collectable again, for a process that starts another application
        if self.scheduler is not None:
            await self.scheduler.stop()
            self.scheduler = None
        while self.active:
            target = self.active.pop()
            try:
                await target.deactivate()
            except Exception:
                logger.exception("%r: deactivate() failed", target)
        self.apps.clear()
        loop.set_server_loop(None)


def websocket_routes() -> list[URLPattern]:
    if not django_apps.is_installed("smsrouter.contrib.httptester"):
        return []
    from smsrouter.contrib.httptester.consumers import ConversationConsumer

    return [re_path(r"^ws/httptester/(?P<backend_name>[\w.@+-]+)/(?P<identity>[^/]+)/$",
                    ConversationConsumer.as_asgi())]


def _websocket_stack(routes: Sequence[URLPattern]) -> Any:
    """The routes behind the Origin check, which reads ALLOWED_HOSTS (and DEBUG) once, here,
    as Django checks Host; and, where django.contrib.auth is installed, the session's user
    in scope["user"] (AuthMiddlewareStack reads the session cookie, as Django's own
    AuthenticationMiddleware does). A client that sends no Origin is refused too."""
    router = URLRouter([*routes, re_path(r"", WebsocketDenier.as_asgi())])
    if django_apps.is_installed("django.contrib.auth"):
        router = AuthMiddlewareStack(router)
    return AllowedHostsOriginValidator(router)


def build_application(django_asgi_app: Any, websocket: Sequence[URLPattern] = ()) -> ProtocolTypeRouter:
    """The root application; `websocket` adds routes of your own before the built-in ones,
    behind the same Origin check and session authentication."""
    from smsrouter.consumers import IncomingWorker, OutgoingWorker
    from smsrouter.webhooks import WebhookFastPath

    resources: dict[str, App] = {}
    return ProtocolTypeRouter({
        "http": URLRouter([
            re_path(r"^res/(?P<app>[\w-]+)/(?P<path>.*)$", AppResourceRouter(resources)),
            re_path(r"", WebhookFastPath(django_asgi_app)),
        ]),
        "websocket": _websocket_stack([*websocket, *websocket_routes()]),
        "channel": ChannelNameRouter({
            "smsrouter.incoming": IncomingWorker.as_asgi(),
            "smsrouter.outgoing": OutgoingWorker.as_asgi(),
        }),
        "lifespan": ResourceLifespan(resources),
    })


def get_application(websocket: Sequence[URLPattern] = ()) -> ProtocolTypeRouter:
    """The whole application for a project's asgi.py: Django set up (get_asgi_application
    does that before anything loads a model), its static files served where
    django.contrib.staticfiles is installed, and `build_application` around it.

    Static files are served as runserver serves them, from the apps' folders through the
    finders (ASGIStaticFilesHandler), so the httptester's page has its CSS and JS under
    uvicorn too; a proxy that answers STATIC_URL itself takes them over unchanged.
    `websocket` adds routes of your own, as for build_application.
    """
    django_asgi_app = get_asgi_application()
    if django_apps.is_installed("django.contrib.staticfiles"):
        django_asgi_app = ASGIStaticFilesHandler(django_asgi_app)
    return build_application(django_asgi_app, websocket)
