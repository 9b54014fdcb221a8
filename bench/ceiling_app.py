"""The ceiling app: an echoed SMS's durable work with no framework around it.

bench/e2e.py serves this under the ASGI server it chose for smsrouter and loads it as it
loads the demo, so that each inline row can say what share of the possible it reaches: a
raw hello-world stores nothing, so "3 % of raw ASGI" says nothing about where the time
goes. Here everything smsrouter must do for an echoed SMS is done, and nothing else: parse
Kannel's `GET /backend/kannel/?id=...&text=echo+...`, store the message and its reply
durably before answering, then send the reply to the gateway with the same client
(aiohttp, pooled as smsrouter/httpclient.py pools it) and store the outcome.

The writes are smsrouter's, statement for statement, as traced on SQLite (sqlite3's trace
callback under uvicorn, one message alone and 64 connections at once) at the commit this
was written against. smsrouter writes what concurrent requests submit together (group
commit, smsrouter/groupcommit.py), so one *batch* of n messages from new numbers costs:

1. one transaction (`BEGIN IMMEDIATE` ... `COMMIT`), after which every request of the
   batch is answered:
   - SELECT the batch's numbers from smsrouter_connection;
   - INSERT OR IGNORE the missing ones, RETURNING their rows;
   - INSERT the n inbound messages, status "received", in one statement, RETURNING ids;
   - UPDATE those n rows to "handled";
   - INSERT the n replies, "queued" (or "failed" for a number that opted out), in one
     statement.
   smsrouter also routes each message in a savepoint (n SAVEPOINT/RELEASE pairs), which
   writes nothing: left out here.
2. the claim: one UPDATE of the replies to "sending", attempts + 1, RETURNING the ids it
   took, in autocommit (its own commit);
3. one sendsms GET per reply text (echo replies differ, so one per reply), concurrently;
4. one transaction: UPDATE the sent replies to "sent".

So 3 commits and 7 statements a batch, and for a message alone (n = 1) 3 commits and 7
statements a message. The database is a copy of the demo's migrated one (same tables,
indexes, foreign keys), opened with Django's own connection settings for the demo:
autocommit, `foreign_keys=ON`, WAL, synchronous=NORMAL, and IMMEDIATE transactions.

The blocking sqlite3 calls run in one dedicated thread, as a minimal app would run them
(and as smsrouter runs its own in Django's one thread for thread-sensitive work). A batch
starts as soon as the previous one is done, so a lone request waits for nobody.

Serve it from the repository root: `uvicorn bench.ceiling_app:app` with DATABASE_URL
(`sqlite:///PATH`, migrated) and FAKE_KANNEL_URL (the sendsms URL) in the environment.
"""

import asyncio
import math
import os
import re
import sqlite3
from collections import defaultdict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp

#: Messages per transaction, as smsrouter.groupcommit.MAX_BATCH.
MAX_BATCH = 256
#: As smsrouter.httpclient: the pool and the timeouts.
POOL_SIZE = 100
TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)
BACKEND = "kannel"
PATH = f"/backend/{BACKEND}/"
ECHO = re.compile(r"\s*echo\b\s*(?P<rest>.*)", re.IGNORECASE | re.DOTALL)
HELP = "Send ECHO followed by some text, and it comes back to you."

MESSAGE_COLUMNS = ("direction", "backend_id", "connection_id", "text", "segments", "status",
                   "external_id", "in_response_to_id", "fields", "error", "attempts", "due_at",
                   "sent_at", "reported_at", "created_at", "updated_at")
_ROW = f"({', '.join('?' * len(MESSAGE_COLUMNS))})"
_INSERT = f"INSERT INTO smsrouter_message ({', '.join(MESSAGE_COLUMNS)}) VALUES "


@dataclass(frozen=True)
class Inbound:
    """One Kannel request: who sent what."""

    identity: str
    text: str


@dataclass(frozen=True)
class Reply:
    """A stored reply, queued for sending."""

    id: int
    identity: str
    text: str


def _now() -> str:
    """The time as Django stores it in SQLite with USE_TZ: naive UTC text."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat(" ")


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _segments(text: str) -> int:
    return 1 if len(text) <= 160 else math.ceil(len(text) / 153)


def reply_to(text: str) -> str | None:
    """What the echo app answers, or None for a message it does not handle."""
    found = ECHO.fullmatch(text)
    if found is None:
        return None
    return found.group("rest") or HELP


class Store:
    """The SQLite connection and the statements, for the one database thread only."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute("INSERT OR IGNORE INTO smsrouter_backend (name) VALUES (?)", (BACKEND,))
        (self.backend_id,), = self.db.execute(
            "SELECT id FROM smsrouter_backend WHERE name = ?", (BACKEND,)).fetchall()

    def close(self) -> None:
        self.db.close()

    def accept(self, batch: list[Inbound]) -> list[Reply]:
        """Store the batch and its replies in one transaction: the replies it queued."""
        now = _now()
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            identities = list(dict.fromkeys(item.identity for item in batch))
            rows = {identity: (pk, opted_out_at) for pk, identity, opted_out_at in db.execute(
                "SELECT id, identity, opted_out_at FROM smsrouter_connection "
                f"WHERE backend_id = ? AND identity IN ({_marks(len(identities))})",
                [self.backend_id, *identities])}
            if missing := [identity for identity in identities if identity not in rows]:
                for pk, identity, opted_out_at in db.execute(
                        "INSERT OR IGNORE INTO smsrouter_connection (backend_id, identity) "
                        f"VALUES {', '.join(['(?, ?)'] * len(missing))} "
                        "RETURNING id, identity, opted_out_at",
                        [value for identity in missing for value in (self.backend_id, identity)]
                ).fetchall():
                    rows[identity] = (pk, opted_out_at)
            params: list[Any] = []
            for item in batch:
                params += ("in", self.backend_id, rows[item.identity][0], item.text,
                           _segments(item.text), "received", None, None, "{}", "", 0, None,
                           None, None, now, now)
            inbound_ids = [pk for (pk,) in db.execute(
                _INSERT + ", ".join([_ROW] * len(batch)) + " RETURNING id", params).fetchall()]
            db.execute("UPDATE smsrouter_message SET status = 'handled', error = '', "
                       f"fields = '{{}}', updated_at = ? WHERE id IN ({_marks(len(batch))})",
                       [now, *inbound_ids])
            wanted = [(item, inbound_id, text) for item, inbound_id in zip(batch, inbound_ids)
                      if (text := reply_to(item.text)) is not None]
            replies = []
            if wanted:
                params = []
                for item, inbound_id, text in wanted:
                    connection_id, opted_out_at = rows[item.identity]
                    params += ("out", self.backend_id, connection_id, text, _segments(text),
                               "queued" if opted_out_at is None else "failed", None,
                               inbound_id, "{}", "", 0, None, None, None, now, now)
                stored = db.execute(_INSERT + ", ".join([_ROW] * len(wanted))
                                    + " RETURNING id, status", params).fetchall()
                replies = [Reply(pk, item.identity, text)
                           for (pk, status), (item, _, text) in zip(stored, wanted)
                           if status == "queued"]
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return replies

    def claim(self, ids: list[int]) -> set[int]:
        """Take the queued replies for sending, in autocommit: the ids taken."""
        now = _now()
        return {pk for (pk,) in self.db.execute(
            "UPDATE smsrouter_message SET status = 'sending', attempts = attempts + 1, "
            f"updated_at = ? WHERE id IN ({_marks(len(ids))}) AND status = 'queued' "
            "AND (due_at IS NULL OR due_at <= ?) RETURNING id", [now, *ids, now]).fetchall()}

    def outcome(self, sent: list[int], failed: dict[int, str]) -> None:
        """Store what the gateway said, in one transaction."""
        now = _now()
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            if sent:
                db.execute("UPDATE smsrouter_message SET status = 'sent', error = '', "
                           "due_at = NULL, sent_at = ?, updated_at = ? "
                           f"WHERE id IN ({_marks(len(sent))}) "
                           "AND status IN ('queued', 'sending')", [now, now, *sent])
            for pk, error in failed.items():
                db.execute("UPDATE smsrouter_message SET status = 'failed', error = ?, "
                           "updated_at = ? WHERE id = ?", [error, now, pk])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


class Ceiling:
    """The app's state on its loop: the database thread, the pending batch, the client."""

    def __init__(self, database_path: str, sendsms_url: str) -> None:
        self.database_path, self.sendsms_url = database_path, sendsms_url
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="ceiling-db")
        self.pending: list[tuple[Inbound, asyncio.Future[None]]] = []
        self.writing = False
        self.sends: set[asyncio.Task[None]] = set()
        self.store: Store | None = None
        self.session: aiohttp.ClientSession | None = None

    async def _in_thread(self, call: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.thread, call, *args)

    async def start(self) -> None:
        self.store = await self._in_thread(Store, self.database_path)
        self.session = aiohttp.ClientSession(timeout=TIMEOUT,
                                             connector=aiohttp.TCPConnector(limit=POOL_SIZE))

    async def stop(self) -> None:
        if self.sends:
            await asyncio.gather(*self.sends, return_exceptions=True)
        if self.session is not None:
            await self.session.close()
        if self.store is not None:
            await self._in_thread(self.store.close)
        self.thread.shutdown()

    async def submit(self, item: Inbound) -> None:
        """Return once `item` and its reply are committed."""
        done = asyncio.get_running_loop().create_future()
        self.pending.append((item, done))
        if not self.writing:
            self.writing = True
            asyncio.ensure_future(self._write())
        await done

    async def _write(self) -> None:
        """Write what is pending, a batch at a time, until nothing is."""
        assert self.store is not None
        try:
            while self.pending:
                batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
                try:
                    replies = await self._in_thread(self.store.accept, [i for i, _ in batch])
                except Exception as exc:
                    for _, done in batch:
                        done.set_exception(exc)
                    continue
                for _, done in batch:
                    done.set_result(None)
                if replies:
                    task = asyncio.ensure_future(self._send(replies))
                    self.sends.add(task)
                    task.add_done_callback(self.sends.discard)
        finally:
            self.writing = False

    async def _send(self, replies: list[Reply]) -> None:
        """Claim the batch's replies, send them (one request per text), store the outcome."""
        assert self.store is not None
        taken = await self._in_thread(self.store.claim, [reply.id for reply in replies])
        by_text: dict[str, list[Reply]] = defaultdict(list)
        for reply in replies:
            if reply.id in taken:
                by_text[reply.text].append(reply)
        groups = list(by_text.values())
        answers = await asyncio.gather(*(self._sendsms(group) for group in groups))
        sent: list[int] = []
        failed: dict[int, str] = {}
        for group, error in zip(groups, answers):
            for reply in group:
                if error is None:
                    sent.append(reply.id)
                else:
                    failed[reply.id] = error
        await self._in_thread(self.store.outcome, sent, failed)

    async def _sendsms(self, group: list[Reply]) -> str | None:
        """One sendsms request: None when the gateway accepted it, else why not."""
        assert self.session is not None
        text = group[0].text
        query = urlencode({"to": " ".join(reply.identity for reply in group),
                           "text": text.encode("utf-8"), "charset": "UTF-8",
                           "coding": 0 if text.isascii() else 2})
        try:
            async with self.session.get(f"{self.sendsms_url}?{query}") as answer:
                await answer.text(errors="replace")
                return None if answer.status < 400 else f"answered {answer.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"


Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
_state: dict[str, Ceiling] = {}


async def _answer(send: Send, status: int, body: bytes = b"") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """The ASGI application: lifespan opens the database and the client."""
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                url = os.environ["DATABASE_URL"]
                if not url.startswith("sqlite:///"):
                    raise RuntimeError(f"DATABASE_URL must be sqlite:///PATH, not {url!r}")
                ceiling = _state["app"] = Ceiling(url.removeprefix("sqlite:///"),
                                                  os.environ["FAKE_KANNEL_URL"])
                await ceiling.start()
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await _state.pop("app").stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] != PATH or scope["method"] != "GET":
        await _answer(send, 404)
        return
    fields = dict(parse_qsl(scope["query_string"].decode("latin-1"), encoding="utf-8"))
    identity, text = fields.get("id"), fields.get("text")
    if not identity or text is None:
        await _answer(send, 400, b"id and text are required")
        return
    await _state["app"].submit(Inbound(identity, text))
    await _answer(send, 200)
