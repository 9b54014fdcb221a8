"""The peer of bench/test_speed.py: N receives in RapidSMS 2.2's own test harness.

`RapidTest` is what RapidSMS's documentation gives projects for testing: a Django
TestCase whose TestRouter keeps sent messages in memory. It routes through the echo
handler and the messagelog app (smsrouter's harness stores every message too), on
in-memory SQLite as smsrouter's tests.settings does. Runs in RapidSMS's virtualenv.

Usage (from the RapidSMS virtualenv): python bench/peer_rapidsms_harness.py N
Prints the seconds the N receive() calls took inside the test.
"""

import sys
import time
import unittest

import django
from django.conf import settings

urlpatterns: list = []
elapsed: list[float] = []


def configure() -> None:
    settings.configure(
        DEBUG=False, SECRET_KEY="bench", USE_TZ=True, ROOT_URLCONF=__name__,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "rapidsms",
                        "rapidsms.contrib.handlers", "rapidsms.contrib.messagelog"],
        RAPIDSMS_HANDLERS=["rapidsms.contrib.echo.handlers.echo.EchoHandler"],
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()


def main() -> None:
    count = int(sys.argv[1])
    configure()
    from django.test.runner import DiscoverRunner
    from rapidsms.contrib.messagelog.models import Message
    from rapidsms.tests.harness import RapidTest

    class Receives(RapidTest):
        apps = ["rapidsms.contrib.handlers", "rapidsms.contrib.messagelog"]

        def test_receives(self) -> None:
            connections = self.lookup_connections([f"+1555{n:07d}" for n in range(50)])
            self.receive("echo warm", connections[0])
            started = time.perf_counter()
            for n in range(count):
                self.receive(f"echo {n}", connections[n % 50])
                self.assertEqual(self.outbound[-1].text, str(n))
            elapsed.append(time.perf_counter() - started)
            self.assertEqual(Message.objects.count(), 2 * (count + 1))  # both sides store

    runner = DiscoverRunner(verbosity=0)
    runner.setup_test_environment()
    databases = runner.setup_databases()
    try:
        result = unittest.TextTestRunner(verbosity=0).run(Receives("test_receives"))
    finally:
        runner.teardown_databases(databases)
        runner.teardown_test_environment()
    if not result.wasSuccessful():
        sys.exit("the RapidTest run failed")
    print(elapsed[0])


if __name__ == "__main__":
    main()
