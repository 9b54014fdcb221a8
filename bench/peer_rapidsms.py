"""The peer: RapidSMS 2.2's BlockingRouter routing N messages in-process, run in its own
virtualenv (bench/routing_vs_rapidsms.py makes it). Echo, a keyword handler and the message log, on
SQLite with the same pragmas as smsrouter's demo (WAL, synchronous=NORMAL), or with
`django-defaults` on Django's own SQLite settings (rollback journal, synchronous=FULL), as
a RapidSMS project runs unless it sets pragmas itself.

Usage (from the RapidSMS virtualenv): python bench/peer_rapidsms.py DB_PATH N [django-defaults]
Prints the seconds the N receive() calls took.
"""

import sys
import time

import django
from django.conf import settings


def configure(database: str, root_urlconf: str, *, tuned: bool = True, **rapidsms: object) -> None:
    """Django for a RapidSMS peer: SQLite with smsrouter's demo pragmas (or, not `tuned`,
    Django's defaults), DEBUG off."""
    pragmas = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    settings.configure(
        DEBUG=False, SECRET_KEY="bench", USE_TZ=True, ROOT_URLCONF=root_urlconf,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": database,
                               "OPTIONS": {"init_command": pragmas} if tuned else {}}},
        RAPIDSMS_ROUTER="rapidsms.router.blocking.BlockingRouter",
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        **rapidsms,
    )
    django.setup()


urlpatterns: list = []


def main() -> None:
    database, count = sys.argv[1], int(sys.argv[2])
    configure(
        database, __name__, tuned=sys.argv[3:] != ["django-defaults"],
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "rapidsms",
                        "rapidsms.backends.database", "rapidsms.contrib.handlers",
                        "rapidsms.contrib.messagelog", "rapidsms.contrib.echo"],
        INSTALLED_BACKENDS={"bench": {"ENGINE": "rapidsms.backends.database.DatabaseBackend"}},
        RAPIDSMS_HANDLERS=["rapidsms.contrib.echo.handlers.echo.EchoHandler",
                           "rapidsms.contrib.echo.handlers.ping.PingHandler"],
    )
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from rapidsms.router import lookup_connections, receive

    connections = lookup_connections("bench", [f"+1{n}" for n in range(50)])
    receive("echo warm", connections[0])
    started = time.perf_counter()
    for n in range(count):
        receive(f"echo {n}", connections[n % 50])
    print(time.perf_counter() - started)


if __name__ == "__main__":
    main()
