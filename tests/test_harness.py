"""The `sms` fixture of the smsrouter pytest plugin."""

from datetime import timedelta

import pytest
from django.utils import timezone

from smsrouter.backends import backends
from smsrouter.backends.locmem import LocmemBackend
from smsrouter.models import Message
from smsrouter.testing import Harness


def test_every_configured_backend_is_swapped_for_memory(sms, settings):
    """Nothing a test sends can reach a real gateway."""
    assert set(settings.INSTALLED_BACKENDS) == {"httptester-public", "httptester-private", "form",
                                                "test"}
    assert all(isinstance(backends[name], LocmemBackend) for name in settings.INSTALLED_BACKENDS)


@pytest.mark.sms_apps("smsrouter.contrib.echo.EchoApp")
def test_receive_returns_the_replies_and_the_outbox_keeps_everything(sms):
    assert sms.receive("echo one").texts() == ["one"]
    assert sms.receive("echo two", identity="+2", backend="httptester-private").texts() == ["two"]
    assert sms.outbox.texts() == ["one", "two"]
    assert [m.connection.identity for m in sms.outbox] == ["+15550000001", "+2"]


@pytest.mark.sms_apps("smsrouter.contrib.echo.EchoApp")
def test_receive_returns_once_the_replies_are_sent(sms):
    """The test's transaction never commits; receive() does what its commit would."""
    (reply,) = sms.receive("echo one")
    assert reply.status == "sent" and Message.objects.get(pk=reply.id).status == "sent"


def test_send_returns_its_messages_sent(sms):
    sent = sms.send("clinic day", ["+1", "+2"], backend="test")
    assert [m.status for m in sent] == ["sent", "sent"]
    assert sms.outbox.texts() == ["clinic day", "clinic day"]
    assert [m.connection.identity for m in sms.outbox] == ["+1", "+2"]


def test_a_scheduled_send_stays_queued(sms):
    """Nothing sends early: a scheduled message waits in the outbox for its time."""
    (message,) = sms.send("later", "+1", backend="test", at=timezone.now() + timedelta(hours=1))
    assert message.status == "queued" and sms.outbox == []


@pytest.mark.sms_apps("smsrouter.contrib.echo.EchoApp")
def test_a_new_harness_starts_with_an_empty_outbox(sms):
    sms.receive("echo one")
    assert Harness().outbox == []


@pytest.mark.asyncio
@pytest.mark.sms_apps("smsrouter.contrib.echo.EchoApp")
async def test_areceive_from_a_coroutine(async_db, sms):
    assert (await sms.areceive("echo async")).texts() == ["async"]


def test_the_plugin_registers_its_marker(pytestconfig):
    assert any(line.startswith("sms_apps") for line in pytestconfig.getini("markers"))
