"""Fixtures shared by the test modules: the demo served for real, over loopback."""

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any
from pathlib import Path

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connections
from hypothesis import HealthCheck, settings as hypothesis_settings

from tests import modemsim
from tests.gateway import FakeGateway
from tests.smsc import FakeSmsc
from tests.stack import require, serving

#: The simulated GSM modem (tests/modemsim.py), as fixtures of every test module.
modem, modem_with_pin = modemsim.modem, modemsim.modem_with_pin

ROOT = Path(__file__).resolve().parent.parent

# Property-based tests stay within seconds in CI; HYPOTHESIS_PROFILE=deep runs each one with
# thousands of examples, for a measurement such as "no 5xx in 3,000 requests".
hypothesis_settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.register_profile(
    "deep", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config: pytest.Config) -> None:
    """A PostgreSQL pass skips as a whole when PostgreSQL is unreachable (fails under CI)."""
    if url := os.environ.get("SMSROUTER_TEST_DATABASE_URL"):
        try:
            require(url)
        except pytest.skip.Exception as skipped:
            pytest.exit(f"SMSROUTER_TEST_DATABASE_URL: {skipped.msg}; skipping this pass.", 0)


def _migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT, env=env, check=True, timeout=120,
    )


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo under uvicorn in its own process, on a fresh SQLite file; its base URL.

    The listening socket is made here and handed to uvicorn, so requests wait in its
    backlog until the app is up: nothing polls or sleeps.
    """
    database = tmp_path_factory.mktemp("demo") / "db.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo.settings",
        "DATABASE_URL": f"sqlite:///{database}",
        "SMSROUTER_PROCESSING": "inline",
    }
    _migrate(env)
    with serving(env) as (port, _):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def _gateway_server() -> Iterator[FakeGateway]:
    fake = FakeGateway()
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def gateway(_gateway_server: FakeGateway) -> FakeGateway:
    """A provider stand-in on a loopback port: `gateway.url`, `gateway.requests`."""
    _gateway_server.reset()
    return _gateway_server


@pytest.fixture
def queued(settings: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    """Celery mode, with nothing consuming: messages wait as a worker or a sender would
    find them. The test backends' calls, as tests/backends.py records them."""
    from tests import backends as test_backends

    test_backends.calls.clear()
    settings.SMSROUTER_PROCESSING = "celery"
    settings.INSTALLED_BACKENDS = {
        "gw": {"ENGINE": "tests.backends.RecordingBackend"},
        "down": {"ENGINE": "tests.backends.DownBackend"},
        "picky": {"ENGINE": "tests.backends.PickyBackend"},
        "elsewhere": {"ENGINE": "tests.backends.DefersBackend"},
    }
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    settings.SMSROUTER_DEFAULT_RESPONSE = None
    settings.SMSROUTER_SEND_MAX_ATTEMPTS = 3
    return test_backends.calls


@pytest.fixture
def application(settings: Any) -> Any:
    """The demo's ASGI root over the tests' URLs, routing through echo."""
    from django.core.asgi import get_asgi_application

    from smsrouter.asgi import build_application

    settings.ROOT_URLCONF = "tests.urls"
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    return build_application(get_asgi_application())


@pytest_asyncio.fixture
async def served(application: Any) -> AsyncIterator[Any]:
    """The application started by its lifespan, as under a server: concurrent webhooks
    commit together, and the scheduler sends."""
    from channels.testing import ApplicationCommunicator

    lifespan = ApplicationCommunicator(application, {"type": "lifespan"})
    await lifespan.send_input({"type": "lifespan.startup"})
    assert await lifespan.receive_output(timeout=5) == {"type": "lifespan.startup.complete"}
    yield application
    await lifespan.send_input({"type": "lifespan.shutdown"})
    assert await lifespan.receive_output(timeout=5) == {"type": "lifespan.shutdown.complete"}


@pytest_asyncio.fixture
async def smsc() -> AsyncIterator[FakeSmsc]:
    """A fake SMSC on a loopback port, for the SMPP backend to bind to."""
    fake = FakeSmsc()
    await fake.start()
    yield fake
    await fake.close()


@pytest_asyncio.fixture
async def async_db(transactional_db: None) -> AsyncIterator[None]:
    """The database for a coroutine test: asgiref's shared sync thread gets a connection of
    its own, closed here, or it would hold the test database open."""
    yield
    await sync_to_async(connections.close_all)()
