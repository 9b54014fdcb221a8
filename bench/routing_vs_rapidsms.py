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

The ceiling is the same durable work with no router: raw sqlite3 on the demo's migrated
schema, the same pragmas, making for each message the statements and commits `incoming()`
makes for an echoed SMS (traced with sqlite3's trace callback): the message INSERTed
"received" (autocommit); then in one transaction its UPDATE to "handled" and its reply
INSERTed "sending"; then the reply's UPDATE to "sent" (autocommit). 4 statements, 3
commits; a number's Connection is read and made once, then cached, as smsrouter caches it.
Both smsrouter rows show their share of it.

The last row runs the same statements and commits through Django's cursor and
`transaction.atomic()` instead of raw sqlite3: what Django's database layer alone costs,
before any model, router or app. It shows how much of the gap to the ceiling no router
built on Django can close.

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

CEILING = """
import os, sqlite3, sys, time
from contextlib import contextmanager
from datetime import UTC, datetime
sys.path.insert(0, {root!r})
os.environ.update(DJANGO_SETTINGS_MODULE="demo.settings", DATABASE_URL="sqlite:///" + sys.argv[1],
                  DJANGO_DEBUG="0")
import django
django.setup()
from django.core.management import call_command
from django.db import connection as django_db, connections, transaction as django_transaction
call_command("migrate", verbosity=0)
insert = ("INSERT INTO smsrouter_message (direction, backend_id, connection_id, text, segments, "
          "status, external_id, in_response_to_id, fields, error, attempts, due_at, sent_at, "
          "reported_at, created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, NULL, ?, '{{}}', '', ?, "
          "NULL, NULL, NULL, ?, ?) RETURNING id")
handled = ("UPDATE smsrouter_message SET status = 'handled', error = '', fields = '{{}}', "
           "updated_at = ? WHERE id = ?")
sent = ("UPDATE smsrouter_message SET status = 'sent', error = '', due_at = NULL, sent_at = ?, "
        "updated_at = ? WHERE id = ? AND status IN ('queued', 'sending')")
connection_sql = "SELECT id FROM smsrouter_connection WHERE backend_id = ? AND identity = ?"
new_connection = "INSERT INTO smsrouter_connection (backend_id, identity) VALUES (?, ?) RETURNING id"
new_backend = "INSERT OR IGNORE INTO smsrouter_backend (name) VALUES (?)"
backend_sql = "SELECT id FROM smsrouter_backend WHERE name = ?"

if sys.argv[3:] == ["django"]:  # the statements through Django's cursor and atomic()
    insert, handled, sent, connection_sql, new_connection, new_backend, backend_sql = (
        sql.replace("?", "%s")
        for sql in (insert, handled, sent, connection_sql, new_connection, new_backend, backend_sql))

    def run(sql, params):
        with django_db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    transaction = django_transaction.atomic
else:
    connections.close_all()
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    for pragma in ("foreign_keys = ON", "journal_mode = WAL", "synchronous = NORMAL"):
        db.execute("PRAGMA " + pragma)

    def run(sql, params):
        return db.execute(sql, params).fetchall()

    @contextmanager
    def transaction():
        db.execute("BEGIN IMMEDIATE")
        yield
        db.execute("COMMIT")

run(new_backend, ("httptester-public",))
(backend,), = run(backend_sql, ("httptester-public",))
known = {{}}

def connection_of(identity):
    if identity not in known:
        found = run(connection_sql, (backend, identity))
        known[identity] = found[0][0] if found else run(new_connection, (backend, identity))[0][0]
    return known[identity]

def now():
    return datetime.now(UTC).replace(tzinfo=None).isoformat(" ")

def echo(identity, text):
    connection, at = connection_of(identity), now()
    (pk,), = run(insert, ("in", backend, connection, text, "received", None, 0, at, at))
    with transaction():
        at = now()
        run(handled, (at, pk))
        (reply,), = run(insert, ("out", backend, connection, text.removeprefix("echo "),
                                 "sending", pk, 1, at, at))
    at = now()
    run(sent, (at, at, reply))

echo("+10", "echo warm")
started = time.perf_counter()
for n in range(int(sys.argv[2])):
    echo(f"+1{{n % 50}}", f"echo {{n}}")
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
    ceiling_command = [sys.executable, "-c", CEILING.format(root=str(ROOT))]
    ceiling = args.n / timed(ceiling_command, args.n, args.runs)
    through_django = args.n / timed(ceiling_command, args.n, args.runs, "django")
    name = f"incoming() vs receive(), {args.n:,} messages: echo + keyword handler + message log"
    writes = {"shape": "lifecycle", "per_item": 2}
    of = "raw sqlite3, incoming()'s statements and commits for an echoed SMS, no router"
    rows.emit([
        rows.row("in-process routing", name, ours, "msg/s", peer=args.n / tuned,
                 ceiling=ceiling, ceiling_of=of, db_writes=writes),
        rows.row("in-process routing", f"{name}; RapidSMS on Django's default SQLite settings",
                 ours, "msg/s", peer=args.n / untuned, ceiling=ceiling, ceiling_of=of,
                 db_writes=writes),
        rows.row("in-process routing", f"ceiling: {of}, {args.n:,} messages", ceiling, "msg/s"),
        rows.row("in-process routing", f"ceiling through Django: the same statements and "
                 f"commits through Django's cursor and atomic(), {args.n:,} messages",
                 through_django, "msg/s"),
    ], args.json)


if __name__ == "__main__":
    main()
