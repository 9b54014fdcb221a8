"""In-process routing, smsrouter against RapidSMS 2.2, in one run on one machine.

Each side routes N messages through echo plus a keyword handler, persisting every message
in and out, on SQLite in WAL mode: smsrouter's `incoming()` with the demo's settings, and
RapidSMS's BlockingRouter `receive()` with its messagelog and handlers apps, run from its
own virtualenv (made here on first use, from PyPI). Each figure is the median of R runs,
each on a fresh database; the machine's load average is printed beside them.

RapidSMS runs twice: with the demo's pragmas, so that the routers are compared rather
than the SQLite settings, and with Django's defaults (rollback journal, synchronous=FULL),
as a RapidSMS project runs unless it sets pragmas itself. That second figure is close to
the issue's baseline of about 215 msg/s.

Usage: .venv/bin/python bench/routing_vs_rapidsms.py [-n 5000] [-r 3] [--json PATH]
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import rows

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / "bench" / ".rapidsms-venv"
PEER = "rapidsms==2.2.0"
TIMEOUT = 900

OURS = """
import os, sys, time
sys.path.insert(0, {root!r})
os.environ.update(DJANGO_SETTINGS_MODULE="demo.settings", DATABASE_URL="sqlite:///" + sys.argv[1],
                  DJANGO_DEBUG="0")
import django, logging
django.setup()
logging.getLogger("smsrouter").setLevel(logging.WARNING)
from django.conf import settings
from django.core.management import call_command
call_command("migrate", verbosity=0)
settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp", "demo.sms.JoinHandler"]
import smsrouter
smsrouter.incoming("httptester-public", "+10", "echo warm")
started = time.perf_counter()
for n in range(int(sys.argv[2])):
    smsrouter.incoming("httptester-public", f"+1{{n % 50}}", f"echo {{n}}")
print(time.perf_counter() - started)
"""


def peer_python() -> str:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", PEER], check=True)
    return str(python)


def timed(command: list[str], count: int, runs: int, *options: str) -> float:
    """Median seconds for `count` messages, each run in a fresh process and database."""
    def once() -> float:
        with tempfile.TemporaryDirectory() as folder:
            out = rows.run([*command, f"{folder}/bench.sqlite3", str(count), *options],
                           cwd=ROOT, timeout=TIMEOUT)
            return float(out.strip().splitlines()[-1])

    return rows.median_of(runs, once)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000, help="messages per run (default 5000)")
    rows.add_arguments(parser)
    args = parser.parse_args()
    peer = [peer_python(), "bench/peer_rapidsms.py"]
    tuned = timed(peer, args.n, args.runs)
    untuned = timed(peer, args.n, args.runs, "django-defaults")
    ours = args.n / timed([sys.executable, "-c", OURS.format(root=str(ROOT))], args.n, args.runs)
    name = f"incoming() vs receive(), {args.n:,} messages: echo + keyword handler + message log"
    writes = {"shape": "lifecycle", "per_item": 2}
    rows.emit([
        rows.row("in-process routing", name, ours, "msg/s", peer=args.n / tuned, db_writes=writes),
        rows.row("in-process routing", f"{name}; RapidSMS on Django's default SQLite settings",
                 ours, "msg/s", peer=args.n / untuned, db_writes=writes),
    ], args.json)


if __name__ == "__main__":
    main()
