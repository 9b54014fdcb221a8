"""Apps the tests route through. Each records the phases it saw in `calls`."""

import asyncio
import threading
import time

from django.db import DatabaseError, connection

from smsrouter import App
from smsrouter.contrib.handlers import KeywordHandler, PatternHandler
from smsrouter.messages import IncomingMessage, OutgoingMessage
from smsrouter.models import Contact
from smsrouter.router import periodic

calls: list[str] = []


class Recorder(App):
    """Records every phase; answers like a polite bystander (handles nothing)."""

    def start(self) -> None:
        calls.append(f"{type(self).__name__}.start")

    def filter(self, msg: IncomingMessage) -> bool:
        calls.append(f"{type(self).__name__}.filter")
        return False

    def parse(self, msg: IncomingMessage) -> None:
        calls.append(f"{type(self).__name__}.parse")

    def handle(self, msg: IncomingMessage) -> bool:
        calls.append(f"{type(self).__name__}.handle")
        return False

    def default(self, msg: IncomingMessage) -> bool:
        calls.append(f"{type(self).__name__}.default")
        return False

    def cleanup(self, msg: IncomingMessage) -> None:
        calls.append(f"{type(self).__name__}.cleanup")

    def outgoing(self, msg: OutgoingMessage) -> bool:
        calls.append(f"{type(self).__name__}.outgoing")
        return True


class First(Recorder):
    pass


class Second(Recorder):
    pass


class DropSpam(Recorder):
    def filter(self, msg: IncomingMessage) -> bool:
        super().filter(msg)
        return "spam" in msg.text


class Handles(Recorder):
    def handle(self, msg: IncomingMessage) -> bool:
        super().handle(msg)
        msg.respond(f"handled {msg.text}")
        return True


class Defaults(Recorder):
    def default(self, msg: IncomingMessage) -> bool:
        super().default(msg)
        msg.respond("from default")
        return True


class Broken(Recorder):
    """Raises in every phase."""

    def filter(self, msg: IncomingMessage) -> bool:
        raise RuntimeError("broken filter")

    def parse(self, msg: IncomingMessage) -> None:
        raise RuntimeError("broken parse")

    def handle(self, msg: IncomingMessage) -> bool:
        raise RuntimeError("broken handle")

    def default(self, msg: IncomingMessage) -> bool:
        raise RuntimeError("broken default")

    def cleanup(self, msg: IncomingMessage) -> None:
        raise RuntimeError("broken cleanup")

    def outgoing(self, msg: OutgoingMessage) -> bool:
        raise RuntimeError("broken outgoing")


class Parses(App):
    def parse(self, msg: IncomingMessage) -> None:
        msg.fields["words"] = len(msg.text.split())


class ReadsFields(App):
    def handle(self, msg: IncomingMessage) -> bool:
        msg.respond(f"{msg.fields.get('words')} words")
        return True


class AsyncHandles(App):
    """An async phase awaited on the loop, which really yields to it."""

    async def handle(self, msg: IncomingMessage) -> bool:
        await asyncio.sleep(0)
        msg.respond(f"async {msg.text}")
        return True


class UsesOrm(App):
    """A sync phase that queries the database, as a sync phase may."""

    def handle(self, msg: IncomingMessage) -> bool:
        msg.respond(f"{Contact.objects.count()} contacts")
        return True


class CancelsSecret(App):
    def outgoing(self, msg: OutgoingMessage) -> bool:
        return "secret" not in msg.text


class Unserializable(App):
    def parse(self, msg: IncomingMessage) -> None:
        msg.fields["oops"] = object()


class Join(KeywordHandler):
    keyword = "join|register"

    def help(self) -> None:
        self.respond("help: send JOIN <name>")

    def handle(self, text: str) -> None:
        self.respond(f"joined {text}")


class Add(PatternHandler):
    pattern = r"add (\d+) (\d+)"

    def handle(self, first: str, second: str) -> None:
        self.respond(str(int(first) + int(second)))


class NotAnApp:
    pass


class AsyncKeyword(KeywordHandler):
    keyword = "later"

    async def handle(self, text: str) -> None:
        self.respond(text)


class WorkerKilled(BaseException):
    """Stands for a worker dying mid-routing: not an Exception, so no app handler catches it."""


class WritesThenDies(App):
    """Writes a contact, then the worker 'dies' before routing finishes."""

    def handle(self, msg: IncomingMessage) -> bool:
        Contact.objects.create(name=f"from {msg.text}")
        if msg.text == "die":
            raise WorkerKilled()
        msg.respond("ok")
        return True


class Reminders(App):
    @periodic(every=3600)
    def remind(self) -> None:
        Contact.objects.create(name="reminded")

    @periodic(every=60)
    async def tick(self) -> None:
        calls.append("tick")


class Probe(App):
    """Resources for the ASGI tests: one that answers, one that waits for another request."""

    label = "probe"
    resources = {"hello": "hello", "wait": "wait", "release": "release", "broken": "broken"}

    async def activate(self) -> None:
        self.released = asyncio.Event()
        calls.append("Probe.activate")

    async def deactivate(self) -> None:
        calls.append("Probe.deactivate")

    async def hello(self, request):
        from smsrouter.resources import Response

        return Response({"hello": request.query.get("name", ["world"])[0], "app": self.get_label()})

    async def wait(self, request):
        await self.released.wait()  # holds no thread: the loop serves others meanwhile
        return "released"

    async def release(self, request):
        self.released.set()
        return "ok"

    async def broken(self, request):
        raise RuntimeError("resource bug")


class TcpEcho(App):
    """Hanji's example: a protocol on a TCP port of its own, opened at activation."""

    async def activate(self) -> None:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()

        self.server = await asyncio.start_server(echo, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def deactivate(self) -> None:
        self.server.close()
        await self.server.wait_closed()


class BrokenActivate(App):
    async def activate(self) -> None:
        raise OSError("port 2775 is taken")


class RecordsThread(App):
    """Notes the thread its phases ran in, and whether an event loop was running there."""

    seen: list[tuple[int, bool]] = []

    def handle(self, msg: IncomingMessage) -> bool:
        try:
            asyncio.get_running_loop()
            loop = True
        except RuntimeError:
            loop = False
        RecordsThread.seen.append((threading.get_ident(), loop))
        msg.respond("noted")
        return True


class BadQueryOnOops(App):
    """Runs a query that fails for "oops", as a buggy app might, and carries on."""

    def handle(self, msg: IncomingMessage) -> bool:
        if msg.text == "oops":
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT * FROM no_such_table")
            except DatabaseError:
                pass
        return False


#: When Ticks.tick ran, in loop-independent seconds.
ticks: list[float] = []


class Ticks(App):
    """A periodic job five times a second."""

    @periodic(every=0.2)
    def tick(self) -> None:
        ticks.append(time.monotonic())
