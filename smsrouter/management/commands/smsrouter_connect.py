"""`manage.py smsrouter_connect <backend>`: keep one backend's link open in this process.

For deployments where the ASGI server does not run lifespan hooks, or runs several
processes (a bind must be held by exactly one): this process binds, receives, and its
scheduler sends what every other process left queued for the backend.
"""

import asyncio
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from smsrouter import dispatch, loop
from smsrouter.backends import backends
from smsrouter.backends.base import BaseBackend
from smsrouter.exceptions import SmsRouterError
from smsrouter.scheduler import Scheduler


class Command(BaseCommand):
    help = ("Hold a backend's link (an SMPP bind) in this process until SIGTERM or SIGINT: "
            "receive its messages and send what is queued for it.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("backend", help="A name from INSTALLED_BACKENDS, e.g. smpp.")

    def handle(self, *args: Any, backend: str, **options: Any) -> None:
        try:
            instance = backends[backend]
        except SmsRouterError as exc:
            raise CommandError(str(exc)) from exc
        if not instance.holds_link:
            raise CommandError(
                f"Backend {backend!r} ({type(instance).__name__}) keeps no link to hold: "
                "it sends from any process. smsrouter_connect is for backends such as "
                "smsrouter.backends.smpp.SmppBackend.")
        asyncio.run(self._run(instance))

    async def _run(self, instance: BaseBackend) -> None:
        stop = asyncio.Event()
        running = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            running.add_signal_handler(signum, stop.set)
        listeners = getattr(instance, "state_listeners", None)
        if listeners is not None:
            listeners.append(self._report)
        self.stdout.write(f"{instance.name}: connecting ({type(instance).__name__})")
        loop.set_server_loop(running)
        await instance.activate()
        scheduler = Scheduler(dispatch.Duties((instance.name,), sweeps=False, periodic=False))
        await scheduler.start()
        try:
            await stop.wait()
        finally:
            await scheduler.stop()
            await instance.deactivate()
            loop.set_server_loop(None)
        self.stdout.write(f"{instance.name}: stopped")

    def _report(self, state: str, detail: str) -> None:
        self.stdout.write(f"{state} {detail}")
        self.stdout.flush()
