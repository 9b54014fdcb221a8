"""A local HTTP server standing in for an SMS provider: it records requests, answers as told.

Real HTTP over loopback, so a backend's wire format is tested as the provider would see
it. It serves from a thread of the test process: a send() returns only after the request
was answered, so a test reads `requests` without waiting.

For the fault tests it also misbehaves as providers do: `hang()` holds every request
unanswered until `release()`, and `down()` stops listening (connection refused) until
`up()` listens again on the same port.
"""

import errno
import json
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    """One request the gateway received, when (time.time()), and the status it answered:
    None while it is held, and for good if it was dropped unanswered."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)
    status: int | None = None

    def param(self, name: str) -> str:
        """The one value of a query parameter."""
        (value,) = self.query[name]
        return value

    def form(self) -> dict[str, str]:
        return {key: values[-1] for key, values in parse_qs(self.body.decode()).items()}

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds between reading the request and answering it


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops the SYNs of a burst of connections: their
    # clients retry a second later, which a 1 s send timeout takes for a hung gateway.
    request_queue_size = 512
    gateway: "FakeGateway"

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.gateway._lock:
            self.gateway._arriving += 1
        super().process_request(request, client_address)


class FakeGateway:
    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.default = Answer()
        self._queued: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._held: threading.Event | None = None  # set: held requests are dropped
        self._placeholder: socket.socket | None = None  # keeps the port while down
        self._arriving = 0  # connections accepted whose request is not in `requests` yet
        self._arrived = threading.Condition(self._lock)
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                seen = Seen(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                            dict(self.headers.items()), self.rfile.read(length))
                with gateway._lock:
                    gateway.requests.append(seen)
                    self._arrival_done()
                    held = gateway._held
                    if held is None:
                        answer = gateway._queued.popleft() if gateway._queued else gateway.default
                        seen.status = answer.status
                if held is not None:
                    held.wait()  # release() or close(); then drop it, as a hung gateway does
                    self.close_connection = True
                    return
                if answer.delay:
                    time.sleep(answer.delay)
                body = answer.body.encode()
                self.send_response(answer.status)
                for name, value in {"Content-Type": "text/plain", **answer.headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads `requests` instead."""

            def handle(self) -> None:
                self.counted = False
                try:
                    super().handle()
                finally:
                    with gateway._lock:
                        self._arrival_done()

            def _arrival_done(self) -> None:
                """Under the lock: this connection's request is recorded, or never will be."""
                if not self.counted:
                    self.counted = True
                    gateway._arriving -= 1
                    gateway._arrived.notify_all()

            def handle_one_request(self) -> None:
                """A client that gave up (a timeout) is no error of the gateway's."""
                try:
                    super().handle_one_request()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        self._handler = Handler
        self._server = self._listen(0)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def _listen(self, port: int) -> ThreadingHTTPServer:
        server = _Server(("127.0.0.1", port), self._handler)
        server.gateway = self
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return server

    def answer(self, status: int = 200, body: str = "", headers: dict[str, str] | None = None,
               times: int = 1) -> None:
        """Answer the next `times` requests so; later ones get `default`."""
        with self._lock:
            self._queued.extend([Answer(status, body, headers or {})] * times)

    def hang(self) -> None:
        """Hold every request from now on, unanswered, until release()."""
        with self._lock:
            if self._held is None:
                self._held = threading.Event()

    def release(self) -> None:
        """Answer new requests again; the held ones are dropped without an answer (their
        clients have given up by then, or get a closed connection: a failed attempt)."""
        with self._lock:
            held, self._held = self._held, None
        if held is not None:
            held.set()

    def held(self) -> list[Seen]:
        """The requests held (or dropped) unanswered so far."""
        with self._lock:
            return [seen for seen in self.requests if seen.status is None]

    def down(self) -> None:
        """Stop listening: connections to the port are refused until up(). The port stays
        bound meanwhile (by a socket that does not listen), so nothing else can take it.
        Once it returns, every request that got through before is in `requests`."""
        if self._placeholder is not None:
            return
        self._stop()
        with self._arrived:
            self._arrived.wait_for(lambda: self._arriving == 0, timeout=5)
        placeholder = socket.socket()
        placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        placeholder.bind(("127.0.0.1", self.port))
        self._placeholder = placeholder

    def up(self) -> None:
        """Listen again on the same port after down()."""
        if self._placeholder is None:
            return
        deadline = time.monotonic() + 5
        while True:
            try:
                self._server = self._listen(self.port)
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._placeholder.close()
        self._placeholder = None

    def accepted(self) -> Counter[str]:
        """How many times each `ref` form field was answered with a 2xx."""
        with self._lock:
            seen = [s for s in self.requests if s.status is not None and 200 <= s.status < 300]
        return Counter(s.form().get("ref") for s in seen)

    def tried(self) -> Counter[str]:
        """How many requests arrived for each `ref` form field, whatever their answer."""
        with self._lock:
            seen = list(self.requests)
        return Counter(s.form().get("ref") for s in seen)

    def reset(self) -> None:
        """Forget what was received and queued, release held requests, listen again if
        down, and answer 200 again by default."""
        self.release()
        self.up()
        with self._lock:
            self.requests.clear()
            self._queued.clear()
            self.default = Answer()

    def _stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def close(self) -> None:
        self.release()
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None
        else:
            self._stop()
