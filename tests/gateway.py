"""A local HTTP server standing in for an SMS provider: it records requests, answers as told.

Real HTTP over loopback, so a backend's wire format is tested as the provider would see
it. It serves from a thread of the test process: a send() returns only after the request
was answered, so a test reads `requests` without waiting.
"""

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    """One request the gateway received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

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


class FakeGateway:
    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.default = Answer()
        self._queued: deque[Answer] = deque()
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                seen = Seen(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                            dict(self.headers.items()), self.rfile.read(length))
                with gateway._lock:
                    gateway.requests.append(seen)
                    answer = gateway._queued.popleft() if gateway._queued else gateway.default
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

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, status: int = 200, body: str = "", headers: dict[str, str] | None = None,
               times: int = 1) -> None:
        """Answer the next `times` requests so; later ones get `default`."""
        with self._lock:
            self._queued.extend([Answer(status, body, headers or {})] * times)

    def reset(self) -> None:
        """Forget what was received and queued, and answer 200 again by default."""
        with self._lock:
            self.requests.clear()
            self._queued.clear()
            self.default = Answer()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
