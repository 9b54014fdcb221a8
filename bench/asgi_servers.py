"""Benchmark ASGI servers (daphne baseline vs uvicorn vs granian) on loopback.

Why this exists: smsrouter is ASGI-native and we chose its production/dev ASGI
server by measurement rather than folklore.  This script is the reproducible
record of that measurement; re-run it when upgrading servers or Django.

It writes two throw-away apps into a temp dir -- a raw ASGI "hello" app and a
minimal Django 5.2 project (settings.configure, no database, one async view
served via get_asgi_application()) -- then, for each server, starts it as a
subprocess on a free 127.0.0.1 port, waits (bounded) until it answers HTTP,
runs a short wrk warm-up plus a measured `wrk -t1 -cN -dDs --latency`, and
stops the server (SIGTERM, then SIGKILL) in a `finally`.  Access logs are off
everywhere so that we measure request handling, not logging.

Usage: .venv/bin/python bench/asgi_servers.py [-c 64] [-d 5] [--warmup 1]
Requires `wrk` on PATH.  Only loopback traffic is generated.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

RAW_APP = '''\
async def app(scope, receive, send):
    if scope["type"] != "http":  # no lifespan/websocket handling needed
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": b"hello"})
'''

DJANGO_APP = '''\
from django.conf import settings
from django.http import HttpResponse
from django.urls import path

settings.configure(
    DEBUG=False, SECRET_KEY="bench-only", ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__, INSTALLED_APPS=[], MIDDLEWARE=[], DATABASES={},
    USE_TZ=True, LOGGING_CONFIG=None,
)

async def ok(request):
    return HttpResponse("OK")

urlpatterns = [path("", ok)]

from django.core.asgi import get_asgi_application  # noqa: E402
application = get_asgi_application()
'''

APPS: dict[str, str] = {"raw": "bench_raw:app", "django": "bench_django:application"}


def server_cmd(name: str, target: str, port: int, appdir: str) -> list[str]:
    bindir = Path(sys.executable).parent
    if name == "daphne":  # -v 0: no access log (it is on by default at -v 1)
        return [str(bindir / "daphne"), "-b", "127.0.0.1", "-p", str(port), "-v", "0", target]
    if name == "uvicorn":
        return [str(bindir / "uvicorn"), target, "--app-dir", appdir, "--host", "127.0.0.1",
                "--port", str(port), "--loop", "uvloop", "--http", "httptools",
                "--no-access-log", "--lifespan", "off"]
    if name == "granian":
        return [str(bindir / "granian"), "--interface", "asgi", "--host", "127.0.0.1",
                "--port", str(port), "--workers", "1", "--no-access-log",
                "--working-dir", appdir, target]
    raise ValueError(name)


SERVERS = ("daphne", "uvicorn", "granian")


@dataclass
class Result:
    app: str
    server: str
    rps: float | None
    p50: str = "-"
    p99: str = "-"
    errors: str = ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc: subprocess.Popen[bytes], port: int, attempts: int = 100) -> None:
    """Poll with real HTTP GETs (0.1 s apart) until 200, the process dies, or we give up."""
    for _ in range(attempts):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {attempts} attempts")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's own process group (granian forks workers), then SIGKILL."""
    if proc.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def run_wrk(port: int, conns: int, duration: int) -> str:
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", f"http://127.0.0.1:{port}/"]
    return subprocess.run(cmd, capture_output=True, text=True, check=True,
                          timeout=duration + 30).stdout


def parse_wrk(app: str, server: str, out: str) -> Result:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    errs = [m.group(0).strip() for m in
            re.finditer(r"(Socket errors:.*|Non-2xx or 3xx responses:.*)", out)]
    return Result(app, server, float(rps.group(1)) if rps else None,
                  pct.get("50", "-"), pct.get("99", "-"), "; ".join(errs))


def bench_one(app: str, server: str, appdir: str, args: argparse.Namespace) -> Result:
    port = free_port()
    log_path = Path(appdir) / f"{app}-{server}.log"
    env = {**os.environ, "PYTHONPATH": appdir, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(server_cmd(server, APPS[app], port, appdir), cwd=appdir, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        t0 = time.monotonic()
        wait_ready(proc, port)
        ready_s = time.monotonic() - t0
        if args.warmup:
            run_wrk(port, args.connections, args.warmup)
        res = parse_wrk(app, server, run_wrk(port, args.connections, args.duration))
        res.errors = (f"ready {ready_s:.2f}s " + res.errors).strip()
        return res
    except (RuntimeError, subprocess.SubprocessError) as exc:
        return Result(app, server, None, errors=f"FAILED: {exc}")
    finally:
        stop(proc)
        if args.show_logs:
            text = log_path.read_text(errors="replace").strip()
            print(f"--- {server}/{app} log ---\n{textwrap.indent(text or '(empty)', '  ')}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-c", "--connections", type=int, default=64)
    p.add_argument("-d", "--duration", type=int, default=5, help="seconds per measurement")
    p.add_argument("--warmup", type=int, default=1, help="warm-up seconds (0 = none)")
    p.add_argument("--apps", nargs="+", choices=list(APPS), default=list(APPS))
    p.add_argument("--show-logs", action="store_true", help="print each server's output")
    args = p.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found on PATH")

    versions = ", ".join(f"{n} {version(n)}" for n in ("django", *SERVERS))
    print(f"python {sys.version.split()[0]}, {versions}; wrk -t1 -c{args.connections} "
          f"-d{args.duration}s (warm-up {args.warmup}s), {os.cpu_count()} CPUs")
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="asgi-bench-") as appdir:
        Path(appdir, "bench_raw.py").write_text(RAW_APP)
        Path(appdir, "bench_django.py").write_text(DJANGO_APP)
        for app in args.apps:
            for server in SERVERS:
                results.append(bench_one(app, server, appdir, args))

    print(f"\n{'app':<7} {'server':<8} {'req/s':>10} {'p50':>9} {'p99':>9} {'vs daphne':>9}  notes")
    for r in results:
        base = next((b.rps for b in results if b.app == r.app and b.server == "daphne"), None)
        ratio = f"{r.rps / base:.2f}x" if r.rps and base else "-"
        rps = f"{r.rps:,.0f}" if r.rps else "-"
        print(f"{r.app:<7} {r.server:<8} {rps:>10} {r.p50:>9} {r.p99:>9} {ratio:>9}  {r.errors}")
    return 1 if any(r.rps is None for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
