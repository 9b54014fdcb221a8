"""A real Kannel between a phone and smsrouter: fakesmsc, bearerbox, smsbox, and the demo.

Debian's `kannel` (bearerbox, smsbox) and `kannel-extras` (fakesmsc) run on free loopback
ports; `make system-deps` installs them. fakesmsc plays the SMSC and the phone: it sends
each line written to its stdin as an SMS, and prints every SMS it is sent. Every wait is
for a line one of the programs prints, with a deadline.
"""

import os
import queue
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import IO, Any
from urllib.parse import quote_from_bytes, unquote_to_bytes

import pytest

from tests.stack import listening_socket, stop, uvicorn

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parent.parent
CONF = Path(__file__).resolve().parent / "kannel" / "kannel.conf"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"  # where kannel-extras puts it
PHONE = "+255700000001"
SHORTCODE = "5555"
STARTUP = 20  # seconds for a program to get ready, on a slow machine
ROUND_TRIP = 10  # seconds for an SMS to go through Kannel, smsrouter and back


class Output:
    """A process's output, line by line: a thread reads it so the process never blocks."""

    def __init__(self, name: str, stream: IO[str], log: Path) -> None:
        self.name, self.log = name, log
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        with stream, self.log.open("w") as copy:
            for line in stream:
                copy.write(line)
                copy.flush()
                self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first line from now on that matches; AssertionError at the deadline."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"{self.name} ended before printing {pattern!r}; "
                                     f"see {self.log}")
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"{self.name} printed no {pattern!r} in {timeout} s; see {self.log}")

    def close(self) -> None:
        """Wait for the reader to see the end of the output (the process has ended)."""
        self._reader.join(timeout=10)


@dataclass
class Kannel:
    """The running chain: write MO lines to `phone`, read what the programs print."""

    phone: subprocess.Popen[str]
    sms_out: Output  # fakesmsc: the SMS Kannel hands the SMSC
    server: Output  # uvicorn's access log, among the server's other lines
    database: Path

    def receive(self, line: str) -> None:
        """The phone sends an SMS: `<from> <to> <text|ucs2|data> <message>`."""
        assert self.phone.stdin is not None
        self.phone.stdin.write(line + "\n")
        self.phone.stdin.flush()

    def next_sms_to(self, number: str) -> tuple[str, str]:
        """The next SMS the SMSC is given for `number`: its fakesmsc type and data."""
        found = self.sms_out.wait_for(
            rf"Got message \d+: <{re.escape(SHORTCODE)} {re.escape(number)} (\S+) (.*)>$",
            ROUND_TRIP)
        return found[1], found[2]

    def query(self, sql: str, *args: object) -> list[tuple]:
        with closing(sqlite3.connect(self.database)) as db:
            return db.execute(sql, args).fetchall()


def _binaries() -> dict[str, str]:
    """Kannel's programs, or skip (fail under CI) naming what is missing."""
    found = {name: shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
             for name in ("bearerbox", "smsbox")}
    found["fakesmsc"] = shutil.which("fakesmsc") or (FAKESMSC if os.access(FAKESMSC, os.X_OK)
                                                     else None)
    missing = sorted(name for name, path in found.items() if path is None)
    if missing:
        reason = (f"Kannel's {', '.join(missing)} not found: `make system-deps` as root "
                  "installs Debian's kannel and kannel-extras")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return {name: path for name, path in found.items() if path is not None}


def _free_ports(count: int) -> list[int]:
    """Ports free right now, for programs that cannot be handed a bound socket."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Programs:
    """The processes started so far, each with its output; stop() ends them, newest first."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.running: list[tuple[subprocess.Popen[str], Output]] = []

    def start(self, name: str, args: list[str], **kwargs: Any) -> tuple[
            subprocess.Popen[str], Output]:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, errors="replace", **kwargs)
        assert process.stdout is not None
        output = Output(name, process.stdout, self.tmp / f"{name}.out")
        self.running.append((process, output))
        return process, output

    def stop(self) -> None:
        for process, output in reversed(self.running):
            stop(process)
            if process.stdin is not None:
                process.stdin.close()
            output.close()


@pytest.fixture(scope="module")
def kannel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kannel]:
    binaries = _binaries()
    tmp = tmp_path_factory.mktemp("kannel")
    admin_port, smsbox_port, sendsms_port, fakesmsc_port = _free_ports(4)
    username, password, token = "smsrouter", secrets.token_urlsafe(), secrets.token_urlsafe()

    # The server's socket is made here and handed to uvicorn, as for conftest's demo_server:
    # Kannel's first get-url waits in its backlog until the app is up.
    sock = listening_socket()
    programs = Programs(tmp)
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        database = tmp / "db.sqlite3"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.kannel.settings",
            "DATABASE_URL": f"sqlite:///{database}",
            "SMSROUTER_PROCESSING": "inline",
            "SMSROUTER_PUBLIC_URL": url,
            "KANNEL_SENDSMS_PORT": str(sendsms_port),
            "KANNEL_USERNAME": username,
            "KANNEL_PASSWORD": password,
            "KANNEL_SENDER": SHORTCODE,
            "KANNEL_TOKEN": token,
        }
        conf = tmp / "kannel.conf"
        conf.write_text(Template(CONF.read_text()).substitute(
            admin_port=admin_port, admin_password=secrets.token_urlsafe(),
            smsbox_port=smsbox_port, sendsms_port=sendsms_port, fakesmsc_port=fakesmsc_port,
            log_dir=tmp, username=username, password=password, smsrouter_url=url, token=token))
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                       cwd=ROOT, env=env, check=True, timeout=120)
        _, server = programs.start("server", uvicorn(sock, "--log-level", "info"),
                                   cwd=ROOT, env=env, pass_fds=[sock.fileno()])
        sock.close()
        _, bearerbox = programs.start("bearerbox", [binaries["bearerbox"], "-v", "1", str(conf)])
        bearerbox.wait_for("Start-up done", STARTUP)  # its ports are open by now
        _, smsbox = programs.start("smsbox", [binaries["smsbox"], "-v", "1", str(conf)])
        smsbox.wait_for("Connected to bearerbox", STARTUP)  # sendsms is up before it
        phone, sms_out = programs.start(
            "fakesmsc", [binaries["fakesmsc"], "-H", "127.0.0.1", "-r", str(fakesmsc_port)],
            stdin=subprocess.PIPE)
        bearerbox.wait_for("Fakesmsc client connected", STARTUP)
        yield Kannel(phone, sms_out, server, database)
    finally:
        sock.close()
        programs.stop()


def test_an_sms_is_routed_and_the_reply_reaches_the_phone(kannel):
    kannel.receive(f"{PHONE} {SHORTCODE} text echo hello")
    assert kannel.next_sms_to(PHONE) == ("text", "hello")
    (sms_id,) = kannel.query(
        "SELECT external_id FROM smsrouter_message WHERE direction = 'in' AND text = ?",
        "echo hello")[0]
    assert re.fullmatch(r"[0-9a-f-]{36}", sms_id)  # Kannel's %I: its retries route once


def test_a_ucs2_sms_comes_back_unchanged(kannel):
    """UCS-2 travels as UTF-16BE bytes both ways, among them whitespace bytes: 0x09 in न
    (U+0928), 0x20 in ‘ (U+2018), 0x0B in ላ (U+120B). %b keeps them; %a would squeeze them."""
    text = "ሰላም ‘ላ’\nनमस्ते 你好 😀"
    encoded = quote_from_bytes(f"echo {text}".encode("utf-16-be"))
    kannel.receive(f"{PHONE} {SHORTCODE} ucs2 {encoded}")
    kind, data = kannel.next_sms_to(PHONE)
    assert kind == "ucs-2"
    assert unquote_to_bytes(data.replace("+", " ")).decode("utf-16-be") == text
    assert kannel.query("SELECT text FROM smsrouter_message WHERE direction = 'in' "
                        "ORDER BY id DESC LIMIT 1") == [(f"echo {text}",)]


def test_kannels_delivery_report_marks_the_reply_delivered(kannel):
    """fakesmsc reports delivery at once; smsbox calls the reply's dlr-url with type 1."""
    kannel.receive(f"{PHONE} {SHORTCODE} text echo report back")
    assert kannel.next_sms_to(PHONE) == ("text", "report back")
    ((message_id,),) = kannel.query(
        "SELECT id FROM smsrouter_message WHERE direction = 'out' AND text = ?", "report back")
    kannel.server.wait_for(
        rf'"GET /backend/kannel/status/\?message_id={message_id}&status=1&\S* HTTP/1.1" 200',
        ROUND_TRIP)
    assert kannel.query("SELECT status FROM smsrouter_message WHERE id = ?",
                        message_id) == [("delivered",)]
