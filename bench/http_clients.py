"""Benchmark async HTTP clients (httpx baseline vs aiohttp) for outbound SMS sends.

Why this exists: smsrouter delivers SMS by calling gateway HTTP APIs (Kannel's
`GET /cgi-bin/sendsms?...` and the like), so the outbound client is on the hot
path.  We chose it by measurement, not folklore; this script is the reproducible
record.  Re-run it when upgrading either client (or httpcore/anyio).

It serves a raw ASGI Kannel stand-in (`202`, `0: Accepted for delivery`) with
uvicorn (uvloop, httptools, no access log) in a subprocess, on a socket bound to
127.0.0.1:0 and passed with `--fd`, stopped in a `finally`.  Then, on uvloop, per
concurrency level and client -- one reused `httpx.AsyncClient` (limits = concurrency)
or `aiohttp.ClientSession` (`TCPConnector(limit=concurrency)`) -- it warms up and
times N sendsms-style GETs from `concurrency` worker tasks.  Client and gateway
share the CPUs: compare ratios within one run, not absolute req/s across machines.

Usage: .venv/bin/python bench/http_clients.py [-n 3000] [-c 1 16 64] [--warmup 200]
Requires aiohttp (not a project dependency).  Only loopback traffic is generated.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from importlib.metadata import version
from pathlib import Path

import aiohttp
import httpx
import uvloop

GATEWAY_APP = '''\
async def app(scope, receive, send):
    if scope["type"] != "http":  # lifespan is off; nothing else expected
        return
    await send({"type": "http.response.start", "status": 202,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"24")]})
    await send({"type": "http.response.body", "body": b"0: Accepted for delivery"})
'''

PARAMS = {"username": "bench", "password": "secret", "to": "+447700900123",
          "text": "Your code is 123456 – valid 5 min", "charset": "UTF-8", "coding": "0"}
CLIENTS = ("httpx", "aiohttp")

def start_gateway(appdir: str) -> tuple[subprocess.Popen[bytes], str]:
    """Bind 127.0.0.1:0 here, pass the listening fd to uvicorn, wait (bounded) for a 202."""
    Path(appdir, "bench_gateway.py").write_text(GATEWAY_APP)
    sock = socket.socket()
    # uvicorn wraps an --fd socket as AF_UNIX and so never sets TCP_NODELAY on accepted
    # connections; without it Nagle + delayed ACKs cap both clients at ~25 req/s.  Set it
    # on the listener: accepted sockets inherit it (Linux).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/cgi-bin/sendsms"
    cmd = [sys.executable, "-m", "uvicorn", "bench_gateway:app", "--app-dir", appdir,
           "--fd", str(sock.fileno()), "--loop", "uvloop", "--http", "httptools",
           "--no-access-log", "--lifespan", "off"]
    with sock, open(Path(appdir, "gateway.log"), "wb") as log:  # the child keeps its copies
        proc = subprocess.Popen(cmd, cwd=appdir, pass_fds=[sock.fileno()], stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(100):  # ~10 s at most
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}?to=1&text=ping", timeout=1) as r:
                if r.status == 202:
                    return proc, url
        except OSError:
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError("gateway not ready")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 5 s."""
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


async def drive(send: Callable[[], Awaitable[int]], n: int, concurrency: int) -> float:
    """Issue n sends from `concurrency` worker tasks; return elapsed seconds."""
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            if (status := await send()) != 202:
                raise RuntimeError(f"gateway answered HTTP {status}")

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0


async def bench_client(name: str, url: str, n: int, concurrency: int, warmup: int) -> float:
    """Return req/s for one client object reused across warm-up and measurement."""
    async with AsyncExitStack() as stack:
        if name == "httpx":
            limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
            client = await stack.enter_async_context(httpx.AsyncClient(limits=limits))

            async def send() -> int:
                return (await client.get(url, params=PARAMS)).status_code
        else:
            connector = aiohttp.TCPConnector(limit=concurrency)
            session = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))

            async def send() -> int:
                async with session.get(url, params=PARAMS) as r:
                    await r.read()
                    return r.status
        await drive(send, warmup, concurrency)
        return n / await drive(send, n, concurrency)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", "--requests", type=int, default=3000, help="measured requests per cell")
    p.add_argument("-c", "--concurrency", type=int, nargs="+", default=[1, 16, 64])
    p.add_argument("--warmup", type=int, default=200, help="warm-up requests per cell")
    args = p.parse_args()

    versions = ", ".join(f"{n} {version(n)}" for n in ("httpx", "httpcore", "aiohttp", "uvicorn", "uvloop"))
    print(f"python {sys.version.split()[0]}, {versions}; n={args.requests} "
          f"(warm-up {args.warmup}), uvloop client loop, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="http-clients-bench-") as appdir:
        proc, url = start_gateway(appdir)
        try:
            results = [(c, name, uvloop.run(bench_client(name, url, args.requests, c, args.warmup)))
                       for c in args.concurrency for name in CLIENTS]
        finally:
            stop(proc)

    print(f"\n{'concurrency':>11} {'client':<8} {'req/s':>9} {'vs httpx':>9}")
    for c, name, rps in results:
        base = next(r for cc, nn, r in results if cc == c and nn == "httpx")
        print(f"{c:>11} {name:<8} {rps:>9,.0f} {rps / base:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
