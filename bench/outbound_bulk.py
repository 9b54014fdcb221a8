"""Outbound bulk: messages per second from send() to 10,000 recipients until all are sent.

A reminder campaign is the heaviest thing most SMS services do. Each side sends to N
distinct numbers through its Kannel backend, to bench/fake_kannel.py on loopback, from a
fresh SQLite file (WAL, synchronous=NORMAL), in a fresh process per run:

* smsrouter: `smsrouter.send()` in inline mode with bench/settings_bulk.py; the clock
  stops when the database holds N outgoing rows in status "sent";
* RapidSMS 2.2: `rapidsms.router.send()` with its Kannel backend and messagelog app, from
  its own virtualenv (bench/peer_rapidsms_bulk.py); the clock stops when send() returns.

Variants, each its own row:

* same text: one send() to all N. Kannel's `to` takes several numbers, so smsrouter puts
  up to 100 recipients in one sendsms request, and RapidSMS all N in one;
* personal: one send() per recipient with its own text ("Hello Amina, ..."), so one
  request per message: the honest figure for personalised reminders;
* personal, asend(): the same N messages from smsrouter's async API, 100 in flight; the
  peer figure is RapidSMS's personal loop, since it has no async API.

After each run the fake gateway must have counted exactly N recipients.

Usage: .venv/bin/python bench/outbound_bulk.py [-n 10000] [-r 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rows
from routing_vs_rapidsms import peer_python

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
TIMEOUT = 900
#: Seconds after send() returns for every row to be "sent" (inline mode: at once).
SETTLE = 60
IN_FLIGHT = 100
BULK_TEXT = "Clinic day is moved to Tuesday 14 May. Bring your card. Reply STOP to opt out."
NAMES = ("Amina", "Baraka", "Chiku", "Daudi", "Eliya", "Fatuma", "Godfrey", "Halima")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
VARIANTS = {
    "same": "same text, one send()",
    "personal": "personal text, one send() each",
    "personal-async": "personal text, asend() 100 in flight",
}
#: How each variant writes its rows, for its ceiling (bench/ceilings_db.py's shapes): one
#: send() to all stores them in batches; one send() each stores and marks each on its own.
DB_WRITES = {
    "same": {"shape": "batched", "per_item": 1},
    "personal": {"shape": "lifecycle", "per_item": 1},
    "personal-async": {"shape": "lifecycle", "per_item": 1},
}


def number(n: int) -> str:
    """The n-th recipient: distinct, and a valid Tanzanian mobile number."""
    return f"+2557{n:08d}"


def personal_text(n: int) -> str:
    """A text of its own for the n-th recipient, so no two share a sendsms request."""
    return (f"Hello {NAMES[n % len(NAMES)]}, your appointment is on {DAYS[n % len(DAYS)]} "
            f"at {8 + n % 9}:00 (ref {n}). Reply STOP to opt out.")


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def smsrouter_child(count: int, variant: str) -> None:
    """In a fresh process: migrate, warm up, then send and time; print seconds."""
    import asyncio

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import smsrouter
    from smsrouter.models import Direction, Message, Status

    smsrouter.send("warm-up", "+19990000000", backend="kannel")
    fetch(os.environ["FAKE_KANNEL_URL"].replace("/cgi-bin/sendsms", "/reset"))
    numbers = [number(n) for n in range(count)]
    started = time.perf_counter()
    if variant == "same":
        smsrouter.send(BULK_TEXT, numbers, backend="kannel")
    elif variant == "personal":
        for n, identity in enumerate(numbers):
            smsrouter.send(personal_text(n), identity, backend="kannel")
    else:
        async def send_all() -> None:
            limit = asyncio.Semaphore(IN_FLIGHT)

            async def one(n: int) -> None:
                async with limit:
                    await smsrouter.asend(personal_text(n), numbers[n], backend="kannel")

            await asyncio.gather(*(one(n) for n in range(count)))

        asyncio.run(send_all())
    outgoing = Message.objects.filter(direction=Direction.OUT).exclude(text="warm-up")
    deadline = time.monotonic() + SETTLE
    while outgoing.filter(status=Status.SENT).count() < count:
        if outgoing.exclude(status__in=[Status.SENT, Status.QUEUED, Status.SENDING]).exists():
            raise SystemExit(f"messages failed: {list(outgoing.values_list('error')[:3])}")
        if time.monotonic() > deadline:
            raise SystemExit(f"fewer than {count} messages were sent {SETTLE} s after send()")
        time.sleep(0.01)
    print(time.perf_counter() - started)


def run_smsrouter(sendsms_url: str, count: int, variant: str) -> float:
    with tempfile.TemporaryDirectory(prefix="smsrouter-bulk-") as folder:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "settings_bulk",
               "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]),
               "DATABASE_URL": f"sqlite:///{folder}/bulk.sqlite3", "FAKE_KANNEL_URL": sendsms_url}
        out = rows.run([sys.executable, __file__, "--child", str(count), variant],
                       env=env, cwd=ROOT, timeout=TIMEOUT)
        return float(out.strip().splitlines()[-1])


def run_rapidsms(sendsms_url: str, count: int, variant: str) -> float:
    with tempfile.TemporaryDirectory(prefix="rapidsms-bulk-") as folder:
        out = rows.run([peer_python(), str(HERE / "peer_rapidsms_bulk.py"),
                        f"{folder}/bulk.sqlite3", str(count), variant, sendsms_url],
                       cwd=ROOT, timeout=TIMEOUT)
        return float(out.strip().splitlines()[-1])


def measured(side: Callable[[str, int, str], float], gateway: Any, count: int, variant: str,
             runs: int) -> tuple[float | None, int]:
    """Median msg/s of `runs` runs, and what the gateway counted in the last.

    Every run must deliver exactly `count` recipients, or its rate means nothing: the rate
    is then None. RapidSMS's BlockingRouter logs a backend's error and returns normally, so
    only the gateway's count shows that its messages never arrived.
    """
    rates, arrived = [], 0
    for _ in range(max(runs, 1)):
        seconds = side(gateway.sendsms_url, count, variant)
        arrived = gateway.count()
        if arrived != count:
            print(f"{side.__name__} {variant}: the gateway counted {arrived} recipients, "
                  f"not {count}: no figure", file=sys.stderr)
            return None, arrived
        rates.append(count / seconds)
    return statistics.median(rates), arrived


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="recipients (default 10,000)")
    parser.add_argument("--variant", choices=VARIANTS, action="append",
                        help="only this variant (repeatable); default: all")
    rows.add_arguments(parser)
    args = parser.parse_args()
    # Imported here: harness needs uvloop, which the RapidSMS virtualenv lacks, and
    # bench/peer_rapidsms_bulk.py imports this module for its texts.
    from harness import FakeKannel, Processes, exit_on_sigterm, workspace

    exit_on_sigterm()
    found, peers = [], {}
    with workspace("bench-bulk-") as logs, Processes(logs) as processes:
        gateway = FakeKannel(processes)
        for variant in args.variant or VARIANTS:
            peer_variant = "same" if variant == "same" else "personal"
            if peer_variant not in peers:
                peers[peer_variant] = measured(run_rapidsms, gateway, args.n, peer_variant,
                                               args.runs)
            theirs, peer_delivered = peers[peer_variant]
            mine, delivered = measured(run_smsrouter, gateway, args.n, variant, args.runs)
            found.append(rows.row("outbound bulk", f"send() to {args.n:,} via Kannel: "
                                  f"{VARIANTS[variant]}", mine, "msg/s", peer=theirs,
                                  delivered=delivered, peer_delivered=peer_delivered,
                                  db_writes=DB_WRITES[variant]))
    rows.emit(found, args.json)
    if any(row["value"] is None for row in found):
        raise SystemExit("smsrouter did not deliver every message: see above")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        smsrouter_child(int(sys.argv[2]), sys.argv[3])
    else:
        main()
