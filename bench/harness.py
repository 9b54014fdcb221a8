"""What the process-based benchmarks share: ports, processes, the fake gateway, databases
and load generation, all on loopback.

Benchmarks that start servers must never leave one running, or the next figure measures a
machine that is still busy. So every process starts in a session of its own, belongs to a
`Processes` group that a `with` block closes, and is stopped by process group (SIGTERM,
then SIGKILL) until no member of its group is left: uvicorn, granian, gunicorn and Celery
all fork workers. `exit_on_sigterm()` turns a SIGTERM of the benchmark itself into the
same clean exit as Ctrl-C.

Two load generators, because they answer different questions:

* `closed_loop()` keeps N connections busy for a time, then stops sending and waits for
  every answer. Stopping that way matters: wrk closes its sockets with requests in flight,
  which the server may still complete (stored and replied to, but not counted by wrk) or
  cancel half-done (a client that hangs up cancels the view). Either way the counts
  differ for a reason that is not the server's. Here every request sent is either
  answered or counted as an error, so "accepted == delivered" can be checked exactly.
* `open_loop()` sends at a fixed rate, whether or not earlier answers are back, and times
  each request from when it was due rather than from when it went out. A server that
  falls behind therefore shows its queueing in the percentiles, rather than quietly
  slowing the generator down (coordinated omission).

Both are a bare asyncio protocol with httptools on uvloop, one request in flight per
connection. `run_wrk()` drives Debian's wrk for raw ceilings, where a Python generator
would run out of CPU first.
"""

import asyncio
import contextlib
import itertools
import math
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httptools
import uvloop

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: how busy the machine was before a figure."""
    return [round(value, 2) for value in os.getloadavg()]


def exit_on_sigterm() -> None:
    """Make SIGTERM raise SystemExit, so `finally` blocks stop what the benchmark started."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def stop_group(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop `process` and everything in its process group: SIGTERM, then SIGKILL.

    The group outlives its leader when a worker ignores the leader's shutdown, so the
    group is checked (signal 0) after the leader is gone, and killed if anyone is left.
    """
    group = process.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            process.poll()
            if process.returncode is not None and not _group_alive(group):
                return
            time.sleep(0.05)
    process.wait(timeout=grace)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member this user may not signal is a member all the same
        pass
    return True


class Processes:
    """Processes started for one measurement, stopped together however the block ends.

    Each writes its output to `<logs>/<name>.log`; a failure names the log to read.
    """

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> "Processes":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self, name: str, command: Sequence[str], *, env: dict[str, str] | None = None,
              cwd: Path = ROOT, pass_fds: Sequence[int] = ()) -> subprocess.Popen[bytes]:
        """Start `command` in a new session (so a process group of its own)."""
        if name in self.running:
            raise ValueError(f"a process named {name!r} is already running")
        with (self.logs / f"{name}.log").open("ab") as log:  # the child keeps its own copy
            process = subprocess.Popen(
                list(command), cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, pass_fds=tuple(pass_fds), start_new_session=True)
        self.running[name] = process
        return process

    def check(self) -> None:
        """Raise if a process has exited: its figures would be meaningless."""
        for name, process in self.running.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}; "
                                   f"see {self.logs / name}.log:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 15) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, name: str) -> None:
        stop_group(self.running.pop(name))

    def close(self) -> None:
        """Stop every process, the most recently started first."""
        for name in reversed(list(self.running)):
            self.stop(name)

    def wait_until_answers(self, url: str, timeout: float = 60.0) -> float:
        """Poll `url` until any HTTP answer comes back; return the seconds that took.

        Any status counts: a 404 or 405 still proves the server is serving. Raises if a
        process of the group exits first, or after `timeout` seconds.
        """
        started = time.monotonic()
        while True:
            self.check()
            try:
                with urllib.request.urlopen(url, timeout=2):
                    pass
                return time.monotonic() - started
            except urllib.error.HTTPError:
                return time.monotonic() - started
            except OSError:
                pass
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"nothing answered {url} within {timeout:.0f} s")
            time.sleep(0.1)


class FakeKannel:
    """bench/fake_kannel.py as a process of `processes`: where replies are counted."""

    def __init__(self, processes: Processes, name: str = "fake-kannel") -> None:
        port_file = processes.logs / f"{name}.port"
        port_file.unlink(missing_ok=True)
        processes.start(name, [sys.executable, str(ROOT / "bench" / "fake_kannel.py"),
                               "--port", "0", "--port-file", str(port_file)])
        deadline = time.monotonic() + 20
        while not port_file.exists():  # it binds the port itself: no other run can take it
            processes.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {processes.logs / name}.log")
            time.sleep(0.05)
        self.base = f"http://127.0.0.1:{int(port_file.read_text())}"
        self.sendsms_url = f"{self.base}/cgi-bin/sendsms"
        processes.wait_until_answers(f"{self.base}/count", timeout=20)

    def count(self) -> int:
        """Recipients accepted since the last reset."""
        with urllib.request.urlopen(f"{self.base}/count", timeout=5) as answer:
            return int(answer.read())

    def reset(self) -> None:
        with urllib.request.urlopen(f"{self.base}/reset", timeout=5):
            pass

    def wait_for(self, expected: int, timeout: float, settle: float = 1.0) -> tuple[int, float]:
        """Wait until the count reaches `expected` and then holds still for `settle` seconds,
        or `timeout` passes. Return the count and the seconds until it last changed.

        Waiting past `expected` catches replies sent twice; the bound keeps a lost reply
        from hanging the run.
        """
        started = time.monotonic()
        last, changed = self.count(), started
        while time.monotonic() - started < timeout:
            time.sleep(0.05)
            now, count = time.monotonic(), self.count()
            if count != last:
                last, changed = count, now
            elif count >= expected and now - changed >= settle:
                break
        return last, changed - started


class Databases:
    """Fresh, migrated databases, each a copy of one database migrated once.

    Migrating takes seconds, copying a file or a PostgreSQL template a fraction of one,
    and every measurement gets an empty database of its own. `migrate(url)` is called once,
    on the template. SQLite files live in `folder`; PostgreSQL databases are dropped by
    `close()`.
    """

    def __init__(self, kind: str, folder: Path, migrate: Callable[[str], None],
                 label: str = "bench") -> None:
        if kind not in ("sqlite", "postgres"):
            raise ValueError(f"kind must be 'sqlite' or 'postgres', not {kind!r}")
        self.kind, self.folder = kind, folder
        self.prefix = f"{label}_{os.getpid()}"
        self.made: list[str] = []
        self.counter = itertools.count()
        self.template = self._url("template")
        if kind == "postgres":
            _postgres(f'CREATE DATABASE "{self.prefix}_template"')
            self.made.append(f"{self.prefix}_template")
        migrate(self.template)

    def __enter__(self) -> "Databases":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _url(self, suffix: str) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.folder / f'{self.prefix}_{suffix}.sqlite3'}"
        return POSTGRES.rsplit("/", 1)[0] + f"/{self.prefix}_{suffix}"

    def new(self) -> str:
        """The URL of an empty, migrated database (DATABASE_URL form)."""
        suffix = str(next(self.counter))
        url = self._url(suffix)
        if self.kind == "sqlite":  # the backup API also copies what is still in the WAL
            with contextlib.closing(sqlite3.connect(_sqlite_path(self.template))) as source, \
                    contextlib.closing(sqlite3.connect(_sqlite_path(url))) as copy:
                source.backup(copy)
        else:
            _postgres(f'CREATE DATABASE "{self.prefix}_{suffix}" TEMPLATE "{self.prefix}_template"')
            self.made.append(f"{self.prefix}_{suffix}")
        return url

    def close(self) -> None:
        while self.made:
            _postgres(f'DROP DATABASE IF EXISTS "{self.made.pop()}" WITH (FORCE)')


def _sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def _postgres(sql: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(sql)


def query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of `sql` on a SQLite or PostgreSQL database given as a DATABASE_URL."""
    if database_url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(_sqlite_path(database_url), timeout=30)) as db:
            return db.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as db:
        return db.execute(sql).fetchall()


def message_counts(database_url: str) -> dict[tuple[str, str], int]:
    """smsrouter's messages by (direction, status), e.g. {("in", "handled"): 10, ...}."""
    rows = query(database_url, "SELECT direction, status, count(*) FROM smsrouter_message "
                               "GROUP BY direction, status")
    return {(direction, status): count for direction, status, count in rows}


def kannel_path(n: int, backend: str = "kannel") -> str:
    """The path and query Kannel's get-url would request for message `n`: the sender is
    +2557 followed by n in eight digits, so each message comes from a number of its own."""
    return f"/backend/{backend}/?id=%2B2557{n:08d}&text=echo+{n}"


@dataclass
class LoadResult:
    """What a load generator saw. Latencies are in seconds, one per answered request."""

    sent: int = 0
    ok: int = 0
    failed: int = 0  # answered, but not 2xx
    errors: int = 0  # no answer: refused, reset, or timed out
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """2xx answers per second over the whole run."""
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile_ms(self, percent: float) -> float:
        """The latency below which `percent` % of answers came (nearest rank), in ms."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        rank = max(math.ceil(percent / 100 * len(ordered)), 1)
        return ordered[rank - 1] * 1000


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 client connection with at most one request in flight."""

    transport: asyncio.Transport  # set by connection_made, before anyone holds the protocol

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.answer: asyncio.Future[int] | None = None
        self.closed = False
        self.idle_since = 0.0  # time.monotonic() of its last answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ConnectionError("connection closed before the answer"))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.answer is not None and not self.answer.done():
                self.answer.set_exception(exc)
            self.transport.close()

    def on_message_complete(self) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_result(self.parser.get_status_code())
        if not self.parser.should_keep_alive():
            self.transport.close()

    def request(self, raw: bytes) -> "asyncio.Future[int]":
        self.parser = httptools.HttpResponseParser(self)
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self.answer


#: Seconds a kept-alive connection may sit idle and still be used: below the servers' own
#: idle timeouts (uvicorn closes one after 5 s). A request written on a connection the
#: server is closing at that moment gets no answer, and would count as one the server
#: failed to answer.
REUSE_WITHIN = 2.0


class _Client:
    """Requests to one host and port, each on a connection that is free at the time."""

    def __init__(self, url: str, timeout: float, max_connections: int) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.head = f"Host: {self.host}:{self.port}\r\nUser-Agent: smsrouter-bench\r\n\r\n"
        self.timeout = timeout
        self.idle: list[_Connection] = []
        self.slots = asyncio.Semaphore(max_connections)
        self.result = LoadResult()

    async def connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, self.host, self.port)
        return connection

    async def get(self, path: str, due: float) -> None:
        """GET `path` and record the answer, timed from `due` (a perf_counter() value;
        uvloop's own clock counts whole milliseconds)."""
        result = self.result
        result.sent += 1
        connection = None
        async with self.slots:
            try:
                connection = self._idle_connection() or await self.connect()
                raw = f"GET {path} HTTP/1.1\r\n{self.head}".encode()
                status = await asyncio.wait_for(connection.request(raw), self.timeout)
            # uvloop raises RuntimeError for a write on a connection the server has closed
            except (OSError, RuntimeError, asyncio.TimeoutError, httptools.HttpParserError):
                result.errors += 1
                if connection is not None:
                    connection.transport.close()
                return
            if not connection.closed:
                connection.idle_since = time.monotonic()
                self.idle.append(connection)
        result.latencies.append(time.perf_counter() - due)
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if 200 <= status < 300:
            result.ok += 1
        else:
            result.failed += 1

    def _idle_connection(self) -> _Connection | None:
        """The most recently answered kept-alive connection, if one is fresh enough
        (REUSE_WITHIN) and the server has not closed it meanwhile; older ones are closed."""
        while self.idle:
            connection = self.idle.pop()
            if connection.closed or connection.transport.is_closing():
                continue
            if time.monotonic() - connection.idle_since <= REUSE_WITHIN:
                return connection
            # Every connection below it in the stack has been idle longer still.
            for stale in [connection, *self.idle]:
                stale.transport.close()
            self.idle.clear()
        return None

    def close(self) -> None:
        for connection in self.idle:
            connection.transport.close()
        self.idle.clear()


async def _closed_loop(url: str, path_for: Callable[[int], str], connections: int,
                       seconds: float, limit: int | None, timeout: float) -> LoadResult:
    client = _Client(url, timeout, connections)
    numbers = itertools.count()
    started = time.perf_counter()
    stop_at = started + seconds

    async def worker() -> None:
        while (now := time.perf_counter()) < stop_at:
            n = next(numbers)
            if limit is not None and n >= limit:
                return
            await client.get(path_for(n), now)

    await asyncio.gather(*(worker() for _ in range(connections)))
    client.result.seconds = time.perf_counter() - started
    client.close()
    return client.result


def closed_loop(url: str, path_for: Callable[[int], str], *, connections: int = 64,
                seconds: float = 10.0, limit: int | None = None,
                timeout: float = 30.0) -> LoadResult:
    """Keep `connections` requests in flight for `seconds` (or until `limit` were sent),
    then let the last ones finish. `path_for(n)` makes the n-th request's path.

    Each connection sends its next request as soon as the last is answered, so the rate
    is the most the server sustains at that concurrency; latencies are per request.
    """
    return _run(_closed_loop(url, path_for, connections, seconds, limit, timeout))


async def _open_loop(url: str, path_for: Callable[[int], str], rate: float, count: int,
                     max_connections: int, timeout: float) -> LoadResult:
    loop = asyncio.get_running_loop()
    client = _Client(url, timeout, max_connections)
    pending: set[asyncio.Task[None]] = set()
    started = time.perf_counter()
    for n in range(count):
        due = started + n / rate
        if (early := due - time.perf_counter()) > 0:
            await asyncio.sleep(early)
        task = loop.create_task(client.get(path_for(n), due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending)
    client.result.seconds = time.perf_counter() - started
    client.close()
    return client.result


def open_loop(url: str, path_for: Callable[[int], str], *, rate: float, count: int,
              max_connections: int = 512, timeout: float = 30.0) -> LoadResult:
    """Send `count` requests at `rate` per second, on schedule whatever the answers do.

    A request due while every connection is busy opens another, up to `max_connections`
    (then it waits for one); either way its latency counts from when it was due.
    """
    if rate <= 0 or count <= 0:
        raise ValueError("rate and count must be positive")
    return _run(_open_loop(url, path_for, rate, count, max_connections, timeout))


def _run(generate: Coroutine[Any, Any, LoadResult]) -> LoadResult:
    """Run a generator on uvloop; SIGINT or SIGTERM stop it at once, then exit as usual.

    uvloop reports an exception raised in a protocol callback and carries on, so the
    SystemExit of `exit_on_sigterm()` would be lost there: the loop takes the signals
    itself while it runs, and the Python handlers are put back afterwards.
    """
    signals = (signal.SIGINT, signal.SIGTERM)
    saved = {signum: signal.getsignal(signum) for signum in signals}
    received: list[int] = []

    def stop(signum: int, work: "asyncio.Task[LoadResult]") -> None:
        received.append(signum)
        work.cancel()

    async def guarded() -> LoadResult:
        loop = asyncio.get_running_loop()
        work = loop.create_task(generate)
        for signum in signals:
            loop.add_signal_handler(signum, stop, signum, work)
        return await work

    try:
        return uvloop.run(guarded())
    except asyncio.CancelledError:
        if not received:
            raise
        if received[0] == signal.SIGINT:
            raise KeyboardInterrupt from None
        raise SystemExit(128 + received[0]) from None
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


#: wrk script for Kannel-style inbound load: each request comes from its own number.
#: Each wrk thread numbers its requests from thread * 10,000,000, so threads never collide.
KANNEL_LUA = """\
local threads = 0
function setup(thread)
  thread:set("offset", threads * 10000000)
  threads = threads + 1
end
local counter = 0
function request()
  local n = offset + counter
  counter = counter + 1
  return wrk.format("GET", string.format(
    "/backend/%s/?id=%%2B2557%08d&text=echo+%d", BACKEND, n, n))
end
"""


@dataclass
class WrkResult:
    """wrk's summary: requests/s, 50th and 99th percentiles in ms, and what went wrong."""

    rate: float
    requests: int
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    output: str


def run_wrk(url: str, *, connections: int = 64, seconds: float = 10.0, threads: int = 1,
            backend: str | None = None, timeout: float = 10.0) -> WrkResult:
    """Run wrk with --latency against `url`; with `backend`, each request is a Kannel
    inbound message (`KANNEL_LUA`) to that backend, otherwise a GET of `url` itself."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk (`make bench` does)")
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s",
               f"--timeout={timeout:g}s", "--latency"]
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as folder:
        if backend is not None:
            script = Path(folder) / "kannel.lua"
            script.write_text(f"BACKEND = {backend!r}\n" + KANNEL_LUA)
            command += ["-s", str(script)]
        output = subprocess.run([*command, url], capture_output=True, text=True, check=True,
                                timeout=seconds + timeout + 30).stdout
    return parse_wrk(output)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(output: str) -> WrkResult:
    """Read the figures out of `wrk --latency` output."""
    def latency(percent: str) -> float:
        found = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
        return float(found.group(1)) * _UNITS_MS[found.group(2)] if found else math.nan

    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    requests = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       output)
    if rate is None or requests is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    return WrkResult(rate=float(rate.group(1)), requests=int(requests.group(1)),
                     p50_ms=latency("50"), p99_ms=latency("99"),
                     non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
                     socket_errors=sum(map(int, errors.groups())) if errors else 0,
                     output=output)


async def hello(scope: dict[str, Any], receive: Callable[[], Any],
                send: Callable[[dict[str, Any]], Any]) -> None:
    """A raw ASGI hello-world: under a given server, the most any application could answer.

    Serve it as `bench.harness:hello` from the repository root. It speaks lifespan, so it
    runs under the same server options as the demo (`--lifespan on`).
    """
    if scope["type"] == "lifespan":
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": b"hello"})


@contextlib.contextmanager
def workspace(prefix: str = "bench-") -> Iterator[Path]:
    """A temporary folder for logs and SQLite files, removed afterwards unless
    BENCH_KEEP=1 (then its path is printed, to read the process logs)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        if os.environ.get("BENCH_KEEP") == "1":
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
