"""Hostile bodies against a real server: uvicorn in its own process, spoken to over a raw
loopback socket, so that nothing between the client and the server buffers the body.

What the URL refuses (an unknown backend, a wrong token) is answered from the headers alone,
and a body over DATA_UPLOAD_MAX_MEMORY_SIZE (Django's default, 2.5 MB, here) gets a 413 as
soon as it passes the limit, chunked or announced by a lying Content-Length: with the fast
path on and off. The server's peak RSS stays put while a client tries to stream 300 MB. The
client stops sending as soon as the server answers, so each exchange takes milliseconds;
a deadline fails a server that would wait for the body instead.
"""

import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.stack import serving

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "s3cret"
LIMIT = 2621440  # Django's default DATA_UPLOAD_MAX_MEMORY_SIZE, which the server keeps
STREAMED = 300 * 1024 * 1024
PIECE = 64 * 1024
#: Generous: the server may allocate a little for the requests themselves.
RSS_GROWTH_BOUND_KB = 50 * 1024
DEADLINE = 20.0

SETTINGS = f"""
import os

from demo.settings import *  # noqa: F403

INSTALLED_BACKENDS = {{
    **INSTALLED_BACKENDS,  # noqa: F405
    "kannel": {{"ENGINE": "smsrouter.backends.kannel.KannelBackend", "token": {TOKEN!r}}},
}}
SMSROUTER_APPS = []
SMSROUTER_DEFAULT_RESPONSE = None
SMSROUTER_WEBHOOK_FAST_PATH = os.environ["TEST_FAST_PATH"] == "1"
"""


@dataclass
class Server:
    port: int
    pid: int

    def peak_rss_kb(self) -> int:
        """VmHWM: the process's peak resident set since it started, in kB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError(f"/proc/{self.pid}/status has no VmHWM")


@pytest.fixture(scope="module", params=[True, False], ids=["fast path", "through Django"])
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo with a token-guarded Kannel backend, DEBUG off, under uvicorn on SQLite."""
    if not Path("/proc/self/status").exists():
        pytest.skip("peak RSS is read from /proc (Linux)")
    folder = tmp_path_factory.mktemp("body_limits")
    (folder / "body_limit_settings.py").write_text(SETTINGS)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "body_limit_settings",
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "DJANGO_DEBUG": "0",
        "SMSROUTER_PROCESSING": "inline",
        "TEST_FAST_PATH": "1" if request.param else "0",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT,
                   env=env, check=True, timeout=120)
    with serving(env) as (port, process):
        yield Server(port, process.pid)


@dataclass
class Answer:
    status: int
    body: bytes
    #: Bytes of the body the client got into the socket before the server answered.
    sent: int

    def error(self) -> str:
        return json.loads(self.body)["error"]


def head(path: str, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1",
             "Content-Type: application/x-www-form-urlencoded", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunked(first: bytes, total: int) -> Iterator[bytes]:
    """A chunked body of `total` bytes or so: `first`, then 64 kB chunks of x, no last chunk."""
    yield b"%x\r\n%s\r\n" % (len(first), first)
    chunk = b"%x\r\n%s\r\n" % (PIECE, b"x" * PIECE)
    for _ in range(total // PIECE):
        yield chunk


def exchange(server: Server, request_head: bytes, body: Iterable[bytes] = ()) -> Answer:
    """Send the head, then the body's pieces until the server answers or closes."""
    pieces = iter(body)
    pending, sent, received = b"", 0, b""
    deadline = time.monotonic() + DEADLINE
    with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PIECE)  # little in flight
        sock.sendall(request_head)
        sock.setblocking(False)
        writing = True
        while (answer := _answer(received, sent)) is None:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no answer in {DEADLINE} s, {sent} bytes of body sent"
            readable, writable, _ = select.select([sock], [sock] if writing else [], [], remaining)
            if readable:
                data = sock.recv(65536)
                assert data, f"closed without an answer after {sent} bytes of body: {received!r}"
                received += data
            elif writable:
                pending = pending or next(pieces, b"")
                if not pending:
                    writing = False
                    continue
                try:
                    written = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    writing = False
                    continue
                sent, pending = sent + written, pending[written:]
    return answer


def _answer(received: bytes, sent: int) -> Answer | None:
    """The response, once all of it is in: chunked (Django's responses announce no length)
    or as long as its Content-Length."""
    header, separator, body = received.partition(b"\r\n\r\n")
    if not separator:
        return None
    lines = header.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    if headers.get("transfer-encoding") == "chunked":
        content = b""
        while True:
            size, crlf, rest = body.partition(b"\r\n")
            if not crlf or len(rest) < int(size, 16) + 2:
                return None
            if int(size, 16) == 0:
                break
            content, body = content + rest[:int(size, 16)], rest[int(size, 16) + 2:]
    elif len(body) < int(headers.get("content-length", 0)):
        return None
    else:
        content = body
    return Answer(int(lines[0].split()[1]), content, sent)


def test_what_the_url_refuses_is_answered_from_the_headers_alone(server: Server) -> None:
    """No body byte is sent at all: the answer cannot have waited for one."""
    answer = exchange(server, head("/backend/nope/", "Content-Length: 1000"))
    assert (answer.status, answer.error()) == (404, "No backend named 'nope'.")
    for query in ("", "?token=guess"):
        answer = exchange(server, head(f"/backend/kannel/{query}", "Content-Length: 1000"))
        assert (answer.status, answer.error()) == (403, "token is missing or wrong")
    answer = exchange(server, head("/backend/kannel/status/?message_id=1&status=16",
                                   "Transfer-Encoding: chunked"))
    assert answer.status == 403


def test_a_lying_content_length_is_413_at_once(server: Server) -> None:
    answer = exchange(server, head(f"/backend/kannel/?token={TOKEN}",
                                   "Content-Length: 10000000000000"))
    assert answer.status == 413
    assert answer.error() == (f"The request body is over DATA_UPLOAD_MAX_MEMORY_SIZE ({LIMIT} "
                              "bytes): Content-Length says 10000000000000.")


def test_a_streamed_body_is_413_once_it_passes_the_limit_and_memory_stays_put(
        server: Server, request: pytest.FixtureRequest) -> None:
    """300 MB offered, chunked, without Content-Length: to an unknown backend (404 before
    the body) and to a valid one (413 at the limit); then the same body within the limit."""
    first = b"id=%2B255700000001&text="
    ok = exchange(server, head(f"/backend/kannel/?token={TOKEN}", "Transfer-Encoding: chunked"),
                  [*chunked(first + b"warm-up", 0), b"0\r\n\r\n"])
    assert ok.status == 200  # the server has served a webhook: its baseline includes that
    before = server.peak_rss_kb()

    unknown = exchange(server, head("/backend/nope/", "Transfer-Encoding: chunked"),
                       chunked(first, STREAMED))
    assert (unknown.status, unknown.error()) == (404, "No backend named 'nope'.")
    assert unknown.sent < LIMIT, "the 404 waited for the body"

    valid = exchange(server, head(f"/backend/kannel/?token={TOKEN}", "Transfer-Encoding: chunked"),
                     chunked(first, STREAMED))
    assert valid.status == 413
    assert valid.error() == (f"The request body is over DATA_UPLOAD_MAX_MEMORY_SIZE ({LIMIT} "
                             "bytes): more than that has arrived.")
    assert LIMIT < valid.sent < STREAMED

    after = server.peak_rss_kb()
    # The figures, for a report: `-o junit_family=legacy --junitxml=...` writes them out.
    request.node.user_properties.append(("peak_rss_kb", {
        "before": before, "after": after,
        "sent_to_unknown": unknown.sent, "sent_to_valid": valid.sent}))
    assert after - before < RSS_GROWTH_BOUND_KB, (
        f"peak RSS grew from {before} kB to {after} kB")
