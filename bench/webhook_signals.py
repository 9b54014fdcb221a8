"""What Django's request signals cost the webhook fast path (smsrouter/webhooks.py).

The fast path sends request_started and request_finished where Django's ASGIHandler runs
their blocking receivers: in the thread for thread-sensitive work, where Django's
close_old_connections then runs (and with CONN_MAX_AGE = 0, Django's default and the
demo's, closes the connection that the next webhook opens again). Variants:

* signals: as shipped, concurrent webhooks' signals in one trip to that thread together;
* signals, a trip each: as ASGIHandler sends them (asend, then response.close());
* no signals: both replaced by no-ops, which is what the fast path did before;
* fast path off: the webhooks through Django's handler and middleware;

each with CONN_MAX_AGE = 0 and None.

Each run is a fresh process on a fresh SQLite file (the demo's settings: WAL, inline
processing, the echo app): the demo's ASGI application is started (lifespan) and driven
in-process, with no sockets, so that the HTTP server's own cost does not dilute the
difference: N webhook POSTs to /backend/form/ (tests.backends.FormBackend: a gateway that
posts forms without auth, since the httptester's backend takes posts only with DEBUG on),
identity and text ("echo <n>" from a number of its own), from C concurrent clients, each sending its next request once
the last is answered. Figures are the median msg/s of -r runs, variants interleaved.

Usage: .venv/bin/python bench/webhook_signals.py [-n 2000] [-r 5] [-c 1 32]
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
PATH = "/backend/form/"
VARIANTS = {  # name: (fast path, signals, CONN_MAX_AGE)
    "signals": (True, "together", 0),
    "signals, a trip each": (True, "each", 0),
    "no signals": (True, "none", 0),
    "fast path off": (False, "together", 0),
    "signals, CONN_MAX_AGE=None": (True, "together", None),
    "signals, a trip each, CONN_MAX_AGE=None": (True, "each", None),
    "no signals, CONN_MAX_AGE=None": (True, "none", None),
    "fast path off, CONN_MAX_AGE=None": (False, "together", None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="webhooks per run (default: 2000)")
    parser.add_argument("-r", "--runs", type=int, default=5, help="runs per figure (default: 5)")
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(**json.loads(args.child))))
        return
    rates: dict[tuple[str, int], list[float]] = {}
    for run in range(args.runs):
        for concurrency in args.concurrency:
            for name, (fast, signals, max_age) in VARIANTS.items():
                options = {"n": args.n, "concurrency": concurrency, "fast": fast, "signals": signals,
                           "max_age": max_age}
                rate = spawn(options)
                rates.setdefault((name, concurrency), []).append(rate)
                print(f"run {run + 1}: {name:<40} c={concurrency:<3} {rate:8.0f} msg/s", file=sys.stderr)
    rows = [{"variant": name, "concurrency": c, "msg_per_s": statistics.median(r), "runs": r}
            for (name, c), r in rates.items()]
    print(f"\n{'variant':<40} {'clients':>7} {'msg/s (median)':>15}   vs no signals")
    for row in rows:
        fast, _, max_age = VARIANTS[row["variant"]]
        base = next(b for b in rows if VARIANTS[b["variant"]] == (True, "none", max_age)
                    and b["concurrency"] == row["concurrency"])
        print(f"{row['variant']:<40} {row['concurrency']:>7} {row['msg_per_s']:>15.0f}"
              f"   {row['msg_per_s'] / base['msg_per_s'] - 1:+.1%}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


def spawn(options: dict[str, Any]) -> float:
    """One run in a process of its own; its msg/s."""
    result = subprocess.run([sys.executable, __file__, "--child", json.dumps(options)],
                            cwd=ROOT, check=True, capture_output=True, text=True, timeout=600)
    return json.loads(result.stdout.splitlines()[-1])


def child(n: int, concurrency: int, fast: bool, signals: str, max_age: int | None) -> float:
    folder = tempfile.mkdtemp(prefix="bench-webhook-signals-")
    os.environ.update({"DJANGO_SETTINGS_MODULE": "demo.settings", "SMSROUTER_PROCESSING": "inline",
                       "DATABASE_URL": f"sqlite:///{folder}/db.sqlite3", "DJANGO_DEBUG": "0"})
    os.environ.pop("CHANNEL_LAYER_URL", None)
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import demo.settings

    demo.settings.DATABASES["default"]["CONN_MAX_AGE"] = max_age
    demo.settings.SMSROUTER_WEBHOOK_FAST_PATH = fast
    demo.settings.INSTALLED_BACKENDS["form"] = {"ENGINE": "tests.backends.FormBackend"}
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.db import connections

    connections.close_all()  # the webhooks open their own, in asgiref's thread

    from smsrouter import webhooks

    if signals == "none":  # the fast path as it was before it sent them
        async def nothing(*args: Any) -> None:
            return None

        webhooks._request_started = webhooks._request_finished = nothing
    elif signals == "each":  # as ASGIHandler sends them: a trip to the thread per signal
        from asgiref.sync import sync_to_async
        from django.core import signals as request_signals

        async def started(sender: type, scope: dict[str, Any]) -> None:
            await request_signals.request_started.asend(sender=sender, scope=scope)

        async def finished(sender: type, response: Any) -> None:
            await sync_to_async(response.close, thread_sensitive=True)()

        webhooks._request_started, webhooks._request_finished = started, finished
    from demo.asgi import application

    try:
        import uvloop
    except ImportError:
        return asyncio.run(drive(application, n, concurrency))
    return uvloop.run(drive(application, n, concurrency))


async def drive(application: Any, n: int, concurrency: int) -> float:
    lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan_out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.create_task(application({"type": "lifespan", "asgi": {"version": "3.0"}},
                                               lifespan_in.get, lifespan_out.put))
    await lifespan_in.put({"type": "lifespan.startup"})
    assert (await lifespan_out.get())["type"] == "lifespan.startup.complete"
    for warm in range(20):
        await post(application, 10**9 + warm)
    numbers = iter(range(n))

    async def client() -> None:
        for number in numbers:
            await post(application, number)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await lifespan_in.put({"type": "lifespan.shutdown"})
    await lifespan
    await check(n)
    return n / elapsed


async def post(application: Any, number: int) -> None:
    body = urlencode({"identity": f"+2557{number:08d}", "text": f"echo {number}"}).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": PATH, "raw_path": PATH.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode()),
                    (b"content-type", b"application/x-www-form-urlencoded")],
    }
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    hung_up = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop()
        await hung_up.wait()
        return {"type": "http.disconnect"}

    answer: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        answer.append(message)

    await application(scope, receive, send)
    if answer[0]["status"] != 200:
        raise RuntimeError(f"webhook {number} answered {answer[0]['status']}: {answer[1:]}")


async def check(n: int) -> None:
    """Every webhook stored, and replied to."""
    from asgiref.sync import sync_to_async

    from smsrouter.models import Message

    def counts() -> tuple[int, int]:
        return (Message.objects.filter(direction="in").count(),
                Message.objects.filter(direction="out", status="sent").count())

    stored, replied = await sync_to_async(counts, thread_sensitive=True)()
    if (stored, replied) != (n + 20, n + 20):
        raise RuntimeError(f"{n + 20} webhooks: {stored} stored, {replied} replies sent")


if __name__ == "__main__":
    main()
