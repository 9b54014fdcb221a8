"""The Channels workers: an id on "smsrouter.incoming" is routed once, an id on
"smsrouter.outgoing" sent once, and a failure is logged without stopping the worker."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import ApplicationCommunicator

import smsrouter
from smsrouter.consumers import IncomingWorker, OutgoingWorker
from smsrouter.models import Message
from tests import backends as test_backends


@pytest.fixture
def channels_mode(settings):
    test_backends.calls.clear()
    settings.SMSROUTER_PROCESSING = "channels"
    settings.INSTALLED_BACKENDS = {"gw": {"ENGINE": "tests.backends.RecordingBackend"}}
    settings.SMSROUTER_APPS = ["smsrouter.contrib.echo.EchoApp"]
    return test_backends.calls


def rows():
    return list(Message.objects.order_by("pk").values_list("direction", "status", "attempts"))


@pytest.mark.asyncio
async def test_an_id_on_the_incoming_channel_is_routed_once_and_its_reply_sent_once(channels_mode, async_db):
    stored = await sync_to_async(smsrouter.incoming)("gw", "+1", "echo hi")
    incoming = ApplicationCommunicator(IncomingWorker.as_asgi(),
                                       {"type": "channel", "channel": "smsrouter.incoming"})
    for _ in range(2):  # a channel layer may repeat an id
        await incoming.send_input({"type": "smsrouter.route", "message_ids": [stored.id]})
    async with asyncio.timeout(5):
        while await sync_to_async(rows)() != [("in", "handled", 0), ("out", "queued", 0)]:
            await asyncio.sleep(0.01)
    reply = await sync_to_async(Message.objects.get)(direction="out")
    outgoing = ApplicationCommunicator(OutgoingWorker.as_asgi(),
                                       {"type": "channel", "channel": "smsrouter.outgoing"})
    for _ in range(2):
        await outgoing.send_input({"type": "smsrouter.send", "backend": "gw", "message_ids": [reply.id]})
    async with asyncio.timeout(5):
        while await sync_to_async(rows)() != [("in", "handled", 0), ("out", "sent", 1)]:
            await asyncio.sleep(0.01)
    assert channels_mode == [("gw", [("+1", "hi")])]
    incoming.stop()
    outgoing.stop()


@pytest.mark.asyncio
async def test_a_bad_event_is_logged_and_the_worker_goes_on(channels_mode, async_db, caplog):
    stored = await sync_to_async(smsrouter.incoming)("gw", "+1", "echo hi")
    incoming = ApplicationCommunicator(IncomingWorker.as_asgi(),
                                       {"type": "channel", "channel": "smsrouter.incoming"})
    await incoming.send_input({"type": "smsrouter.route"})  # no ids: a bug elsewhere
    await incoming.send_input({"type": "smsrouter.route", "message_ids": [stored.id]})
    async with asyncio.timeout(5):
        while await sync_to_async(rows)() != [("in", "handled", 0), ("out", "queued", 0)]:
            await asyncio.sleep(0.01)
    assert "routing messages None failed" in caplog.text
    incoming.stop()
