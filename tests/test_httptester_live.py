"""Live httptester conversations are a side effect: they work without CHANNEL_LAYERS (one
in-process layer, shared by the publisher and the consumer), and a channel layer that
fails is logged, never stores a message twice."""

import logging

import pytest
from channels.layers import BaseChannelLayer, get_channel_layer
from django.test.signals import setting_changed

from smsrouter.api import aincoming
from smsrouter.models import Message
from tests.test_asgi import websocket

class DownLayer(BaseChannelLayer):
    """A channel layer whose server is unreachable."""

    async def group_send(self, group, message):
        raise ConnectionError("Redis is down")


@pytest.mark.asyncio
async def test_without_channel_layers_a_socket_gets_its_conversations_messages(
        async_db, settings, application):
    del settings.CHANNEL_LAYERS
    # What override_settings would send (pytest-django's del does not): Channels drops
    # the layer it made for the old setting.
    setting_changed.send(sender=type(settings), setting="CHANNEL_LAYERS", value=None, enter=True)
    assert get_channel_layer() is None
    settings.DEBUG = True  # this machine's socket needs no login
    socket = websocket(application, "/ws/httptester/httptester-public/+255700000001/")
    connected, _ = await socket.connect(timeout=5)
    assert connected
    await aincoming("httptester-public", "+255700000001", "echo live")
    frame = await socket.receive_json_from(timeout=5)
    assert (frame["direction"], frame["text"]) == ("in", "echo live")
    await socket.disconnect()


@pytest.mark.asyncio
async def test_a_failing_channel_layer_stores_one_row_and_logs_a_warning(async_db, settings, served, caplog):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "tests.test_httptester_live.DownLayer"}}
    with caplog.at_level(logging.WARNING):
        await aincoming("httptester-public", "+255700000001", "echo once")
    assert await Message.objects.filter(direction="in", text="echo once").acount() == 1
    assert await Message.objects.filter(direction="out", text="once").acount() == 1
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings and {r.name for r in warnings} == {"smsrouter.contrib.httptester.live"}
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in warnings)
    assert "not published: ConnectionError: Redis is down" in warnings[0].getMessage()
