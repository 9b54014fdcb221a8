"""A stand-in for Kannel smsbox's sendsms endpoint, fast enough never to be the bottleneck.

The end-to-end benchmarks count replies where a real deployment would hand them over: at
the gateway. This process answers `GET /cgi-bin/sendsms?to=...&text=...` as smsbox does,
202 `0: Accepted for delivery`, and counts each recipient in `to` (numbers separated by
spaces: one request may carry several). `GET /count` answers the count as text, and
`GET /reset` sets it to 0. A sendsms request without `to` gets 400, so a malformed reply
shows up as a send failure rather than as a delivery.

It is a bare asyncio protocol with httptools on uvloop: measured alone with
`wrk -t1 -c64 -d5s` on the 2-core bench machine, it answered 125,000 requests/s (p99
0.9 ms), where aiohttp's low-level server (also on uvloop) answered 45,500. The replies
the benchmarks send through it stay under a tenth of that.

Usage: python bench/fake_kannel.py --port N [--host 127.0.0.1] [--port-file PATH]
With --port 0 the system picks a free port, written to --port-file once it is bound: no
other process can take it in between, as it could a port chosen beforehand.
"""

import argparse
import asyncio
import signal
from pathlib import Path
from urllib.parse import unquote_plus

import httptools
import uvloop

ACCEPTED = b"0: Accepted for delivery"


class Counter:
    """Recipients accepted since the start or the last reset."""

    def __init__(self) -> None:
        self.recipients = 0


class SendsmsProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection: parse each request, answer it, keep the connection open."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._answer(400, b"malformed request", keep_alive=False)

    def on_message_begin(self) -> None:
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url  # httptools may hand the URL over in pieces

    def on_message_complete(self) -> None:
        # Split by hand: httptools.parse_url refuses URLs over 64 KiB, and RapidSMS puts
        # every recipient of a send() into one request.
        path, _, query = self.url.partition(b"?")
        status, body = self._route(path, query.partition(b"#")[0])
        self._answer(status, body, keep_alive=self.parser.should_keep_alive())

    def _route(self, path: bytes, query: bytes) -> tuple[int, bytes]:
        if path == b"/cgi-bin/sendsms":
            recipients = _recipients(query)
            if not recipients:
                return 400, b"Missing receiver number, rejected"
            self.counter.recipients += recipients
            return 202, ACCEPTED
        if path == b"/count":
            return 200, str(self.counter.recipients).encode()
        if path == b"/reset":
            self.counter.recipients = 0
            return 200, b"0"
        return 404, b"not found"

    def _answer(self, status: int, body: bytes, *, keep_alive: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\n"
                f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n")
        if not keep_alive:
            head += "Connection: close\r\n"
        self.transport.write(head.encode() + b"\r\n" + body)
        if not keep_alive:
            self.transport.close()


_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found"}


def _recipients(query: bytes) -> int:
    """How many numbers the `to` field names; 0 when there is none."""
    for field in query.split(b"&"):
        if field.startswith(b"to="):
            return len(unquote_plus(field[3:].decode("latin-1")).split())
    return 0


async def serve(host: str, port: int, port_file: Path | None = None) -> None:
    """Serve until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    counter = Counter()
    server = await loop.create_server(lambda: SendsmsProtocol(counter), host, port, backlog=1024)
    if port_file is not None:
        bound = server.sockets[0].getsockname()[1]
        port_file.with_suffix(".tmp").write_text(str(bound))
        port_file.with_suffix(".tmp").replace(port_file)  # whole, or not there yet
    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    async with server:
        await stopped.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="0: any free port")
    parser.add_argument("--port-file", type=Path, help="where to write the bound port")
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.port_file))


if __name__ == "__main__":
    main()
