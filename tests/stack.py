"""Real processes for the scale-out and fault tests and the benchmark: a fresh database
(PostgreSQL, or a SQLite file), one or more demo web servers, Celery workers or a Channels
runworker, and the sweeper.

They talk over loopback to the services the machine runs (PostgreSQL, Redis, RabbitMQ).
A test that needs one skips when it is unreachable, except under CI, where it fails.
"""

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get("SMSROUTER_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("SMSROUTER_TEST_REDIS", "redis://127.0.0.1:6379")
RABBITMQ = os.environ.get("SMSROUTER_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672//")

T = TypeVar("T")


def listening_socket() -> socket.socket:
    """A loopback socket to hand to uvicorn with `--fd`: requests wait in its backlog until
    the app is up, so nothing polls for readiness.

    uvicorn takes an --fd socket for a Unix one and leaves Nagle on; accepted sockets
    inherit TCP_NODELAY from here, or each small response waits out a 40 ms delayed ACK.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    return sock


def uvicorn(sock: socket.socket, *options: str) -> list[str]:
    """The command serving the demo project's ASGI application on `sock`."""
    return [sys.executable, "-m", "uvicorn", "demo.asgi:application", "--fd", str(sock.fileno()),
            "--lifespan", "on", *options]


@contextlib.contextmanager
def serving(env: dict[str, str]) -> Iterator[tuple[int, subprocess.Popen]]:
    """The demo's ASGI application (or the one env's settings name) under uvicorn in a
    process of its own, on a fresh loopback socket: its port and process; stopped after."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    process = subprocess.Popen(uvicorn(sock, "--no-access-log", "--log-level", "warning"),
                               cwd=ROOT, env=env, pass_fds=[sock.fileno()])
    sock.close()
    try:
        yield port, process
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """Ask the process to end (SIGTERM), and kill it if it has not within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def require(url: str) -> None:
    """Skip (or, under CI, fail) unless the service at `url` accepts connections."""
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=2).close()
    except OSError as exc:
        reason = f"{parts.scheme} at {parts.hostname}:{parts.port} is unreachable ({exc})"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


class Stack:
    """One deployment: its own database, queue and channel-layer prefix, its processes.

    `sqlite` (a file path) puts the database in that file instead of a fresh PostgreSQL
    database; `broker=None` runs without Celery and Redis (channel layer and cache stay in
    each process). `settings` and `env` choose the settings module and add variables.
    """

    def __init__(self, logs: Path, *, processing: str, gateway_url: str,
                 broker: str | None = REDIS, sqlite: Path | None = None,
                 settings: str = "tests.scale_settings", env: dict[str, str] | None = None) -> None:
        for url in ([] if sqlite else [POSTGRES]) + ([REDIS, broker] if broker else []):
            require(url)
        run_id = uuid.uuid4().hex[:10]
        self.sqlite = sqlite
        if sqlite:
            self.database = None
            self.database_url = f"sqlite:///{sqlite}"
        else:
            self.database = f"smsrouter_it_{run_id}"
            with psycopg.connect(POSTGRES, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{self.database}"')
            self.database_url = POSTGRES.rsplit("/", 1)[0] + f"/{self.database}"
        self.logs = logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CHANNEL_LAYER_URL")},
            "DJANGO_SETTINGS_MODULE": settings,
            "DATABASE_URL": self.database_url,
            "SMSROUTER_PROCESSING": processing,
            "GATEWAY_URL": gateway_url,
            "PYTHONUNBUFFERED": "1",
        }
        if broker:
            self.env |= {
                "CELERY_BROKER_URL": f"{REDIS}/13" if broker == REDIS else broker,
                "CELERY_QUEUE": f"smsrouter-it-{run_id}",
                "REDIS_URL": f"{REDIS}/14",
            }
        self.env |= env or {}
        try:
            self.manage("migrate", "--noinput", "-v", "0")
        except BaseException:
            self.close()  # drops the database made above
            raise

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a management command to its end, with this deployment's environment."""
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env,
                              timeout=120, capture_output=True, text=True)
        if done.returncode:
            pytest.fail(f"manage.py {' '.join(args)} exited with {done.returncode}:\n"
                        f"{done.stdout[-2000:]}{done.stderr[-4000:]}")
        return done

    def start(self, name: str, *command: str, pass_fds: tuple[int, ...] = ()) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:  # the child keeps its own copy
            self.processes[name] = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                pass_fds=pass_fds, start_new_session=True)

    def start_web(self, name: str = "web") -> str:
        """uvicorn on a socket made here: requests wait in its backlog until it is up.
        Several may run, by name; one killed may start again under its name (on a new port)."""
        sock = listening_socket()
        self.start(name, *uvicorn(sock, "--no-access-log", "--log-level", "warning"),
                   pass_fds=(sock.fileno(),))
        port = sock.getsockname()[1]
        sock.close()
        return f"http://127.0.0.1:{port}"

    def start_celery_worker(self, name: str = "worker", concurrency: int = 2) -> None:
        self.start(name, sys.executable, "-m", "celery", "-A", "demo", "worker",
                   "-Q", self.env["CELERY_QUEUE"], "-c", str(concurrency), "-l", "warning",
                   "--without-gossip", "--without-mingle", "--without-heartbeat",
                   "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h")

    def start_runworker(self, name: str = "runworker") -> None:
        self.start(name, sys.executable, "manage.py", "runworker",
                   "smsrouter.incoming", "smsrouter.outgoing")

    def start_sweeper(self, older_than: float = 3, every: float = 1) -> None:
        self.start("sweeper", sys.executable, "manage.py", "smsrouter_recover",
                   "--older-than", str(older_than), "--every", str(every))

    def kill(self, name: str) -> None:
        """SIGKILL the process and its children: no chance to finish or hand work back."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def query(self, sql: str) -> list[tuple]:
        if self.sqlite:
            connection = sqlite3.connect(self.sqlite, timeout=10)
            try:
                return connection.execute(sql).fetchall()
            finally:
                connection.close()
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            return connection.execute(sql).fetchall()

    def counts(self) -> dict[tuple[str, str], int]:
        rows = self.query("SELECT direction, status, count(*) FROM smsrouter_message "
                          "GROUP BY direction, status")
        return {(direction, status): count for direction, status, count in rows}

    def wait_for(self, done: Callable[[dict[tuple[str, str], int]], bool], timeout: float,
                 what: str) -> dict[tuple[str, str], int]:
        """Poll the database until `done(counts)`, or fail after `timeout` seconds."""
        return self.wait_until(self.counts, done, timeout, what)

    def wait_until(self, read: Callable[[], T], done: Callable[[T], bool], timeout: float,
                   what: str) -> T:
        """Poll `read()` until `done()` holds for what it returned, or fail after `timeout`
        seconds (or as soon as one of the processes has exited)."""
        deadline = time.monotonic() + timeout
        while True:
            value = read()
            if done(value):
                return value
            for name, process in self.processes.items():
                if process.poll() is not None:
                    pytest.fail(f"{name} exited with {process.returncode} while waiting for "
                                f"{what}; see {self.logs / name}.log")
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not happen in {timeout:.0f} s: {value}; "
                            f"counts {self.counts()}; logs in {self.logs}")
            time.sleep(0.1)

    def close(self) -> None:
        """Stop every process (one that is already gone does not stop the others), then
        drop the database."""
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()
        if self.database:
            with psycopg.connect(POSTGRES, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
