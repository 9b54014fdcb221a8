"""A pytest plugin: the `sms` fixture routes messages in memory, like Django's mail.outbox.

pytest loads this module in every project that installs smsrouter, before Django is
configured: so it imports nothing of Django or smsrouter at module level, and it has no
autouse fixtures.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from smsrouter.messages import OutgoingMessage

TEST_BACKEND = "test"
LOCMEM = "smsrouter.backends.locmem.LocmemBackend"


class Outbox(list["OutgoingMessage"]):
    """Messages sent, oldest first."""

    def texts(self) -> list[str]:
        return [message.text for message in self]


class Harness:
    """Receive SMS as a phone would, and read what was sent back.

    Every configured backend is swapped for an in-memory one, so nothing reaches a gateway.
    """

    def __init__(self, backend: str = TEST_BACKEND) -> None:
        from smsrouter.backends import locmem

        self.backend = backend
        self._sent = locmem.outbox
        self._sent.clear()

    @property
    def outbox(self) -> Outbox:
        """Everything sent since the test began, through any backend."""
        return Outbox(self._sent)

    def receive(
        self, text: str, identity: str = "+15550000001", backend: str | None = None, **kwargs: Any
    ) -> Outbox:
        """Route `text` from `identity`; the replies it got, once they have been sent."""
        from smsrouter.api import incoming

        with committed():
            msg = incoming(backend or self.backend, identity, text, **kwargs)
        return Outbox(msg.responses)

    async def areceive(
        self, text: str, identity: str = "+15550000001", backend: str | None = None, **kwargs: Any
    ) -> Outbox:
        from asgiref.sync import sync_to_async

        return await sync_to_async(self.receive, thread_sensitive=True)(text, identity, backend, **kwargs)

    def send(self, text: str, to: Any, **kwargs: Any) -> list[OutgoingMessage]:
        """`smsrouter.send()`, its messages sent before it returns."""
        from smsrouter.api import send

        with committed():
            return send(text, to, **kwargs)


def committed() -> Any:
    """What the test's transaction would do at its commit, done at the end of the block:
    the sender's work, which waits for a commit that a test never makes."""
    from django.test import TestCase

    return TestCase.captureOnCommitCallbacks(execute=True)


@pytest.fixture
def sms(request: pytest.FixtureRequest, settings: Any, db: None) -> Iterator[Harness]:
    """An in-memory SMS harness: inline processing, every backend in memory.

    Mark a test `@pytest.mark.sms_apps("dotted.App", ...)` to route it through those apps.
    Backend and Connection rows are cached from their first use in the test (the test's
    transaction never commits): a test that rolls back a savepoint around the first
    message from a number should not send from that number again.
    """
    from smsrouter import addressbook

    if marker := request.node.get_closest_marker("sms_apps"):
        settings.SMSROUTER_APPS = list(marker.args)
    names = [*getattr(settings, "INSTALLED_BACKENDS", {}), TEST_BACKEND]
    settings.INSTALLED_BACKENDS = {name: {"ENGINE": LOCMEM} for name in names}
    settings.SMSROUTER_PROCESSING = "inline"
    addressbook.trust_uncommitted(True)
    yield Harness()
    addressbook.trust_uncommitted(False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sms_apps(*paths): SMSROUTER_APPS for the `sms` fixture")


def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Forget cached Backend and Connection rows: the test's database is gone."""
    if (addressbook := sys.modules.get("smsrouter.addressbook")) is not None:
        addressbook.clear()
