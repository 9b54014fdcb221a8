"""Time N `smsrouter.incoming()` calls through EchoApp on SQLite, against bare ORM work.

The baseline does the database work one echoed SMS needs, written directly with the ORM
(look up the connection, store the message, store the reply, update both), in the same
run and the same database: the ratio says what routing costs on top of persistence.
Run by hand (`make bench`); tests never assert timings.

Usage: .venv/bin/python bench/incoming.py [-n 1000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup(database: Path) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "demo.settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    import logging

    logging.getLogger("smsrouter").setLevel(logging.WARNING)


def timed(label: str, count: int, run: Callable[[int], object]) -> float:
    started = time.perf_counter()
    for n in range(count):
        run(n)
    elapsed = time.perf_counter() - started
    print(f"{label:<36} {count:>6} msgs {elapsed:8.3f} s {count / elapsed:9.0f} msg/s "
          f"{elapsed / count * 1000:7.3f} ms/msg")
    return elapsed


def bare_orm(n: int) -> None:
    from smsrouter.models import Backend, Connection, Message

    backend, _ = Backend.objects.get_or_create(name="httptester-public")
    connection, _ = Connection.objects.get_or_create(backend=backend, identity=f"+1{n % 50}")
    common = {"backend": backend, "connection": connection}
    msg = Message.objects.create(direction="in", text=f"echo {n}", status="received", **common)
    reply = Message.objects.create(direction="out", text=str(n), status="queued",
                                   in_response_to=msg, **common)
    Message.objects.filter(pk=msg.pk).update(status="handled")
    Message.objects.filter(pk=reply.pk).update(status="sent")


def smsrouter_incoming(n: int) -> None:
    import smsrouter

    smsrouter.incoming("httptester-public", f"+2{n % 50}", f"echo {n}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="messages per run (default 1000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        setup(Path(folder) / "bench.sqlite3")
        from django.conf import settings

        settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
        assert settings.SMSROUTER_PROCESSING == "inline"
        print(f"SQLite (WAL, synchronous=NORMAL) in {folder}; apps: {settings.SMSROUTER_APPS}")
        smsrouter_incoming(-1)  # warm caches and imports before timing either side
        bare_orm(-1)
        baseline = timed("baseline: bare ORM work", args.n, bare_orm)
        ours = timed("smsrouter.incoming() through echo", args.n, smsrouter_incoming)
        print(f"ratio smsrouter / baseline: {ours / baseline:.2f}x the time")


if __name__ == "__main__":
    main()
