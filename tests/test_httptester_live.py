"""Live httptester conversations are a side effect: they work without CHANNEL_LAYERS (one
in-process layer, shared by the publisher and the consumer), and a channel layer that
fails is logged, never stores a message twice."""

import logging

import pytest
from channels.layers import BaseChannelLayer, get_channel_layer
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.test.signals import setting_changed

from smsrouter.models import Message

INBOUND = "/backend/httptester-public/"


class DownLayer(BaseChannelLayer):
    """A channel layer whose server is unreachable."""

    async def group_send(self, group, message):
        raise ConnectionError("Redis is down")


async def post_form(application, body):
    communicator = HttpCommunicator(application, "POST", INBOUND, body=body, headers=[
        (b"host", b"127.0.0.1"), (b"content-type", b"application/x-www-form-urlencoded")])
    response = await communicator.get_response(timeout=5)
    await communicator.wait(timeout=5)
    return response["status"]


@pytest.mark.asyncio
async def test_without_channel_layers_a_socket_gets_its_conversations_messages(
        async_db, settings, application):
    del settings.CHANNEL_LAYERS
    # What override_settings would send (pytest-django's del does not): Channels drops
    # the layer it made for the old setting.
    setting_changed.send(sender=type(settings), setting="CHANNEL_LAYERS", value=None, enter=True)
    assert get_channel_layer() is None
    socket = WebsocketCommunicator(application, "/ws/httptester/httptester-public/+255700000001/")
    connected, _ = await socket.connect(timeout=5)
    assert connected
    assert await post_form(application, b"identity=%2B255700000001&text=echo+live") == 200
    frame = await socket.receive_json_from(timeout=5)
    assert (frame["direction"], frame["text"]) == ("in", "echo live")
    await socket.disconnect()


@pytest.mark.asyncio
async def test_a_failing_channel_layer_stores_one_row_and_logs_a_warning(async_db, settings, served, caplog):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "tests.test_httptester_live.DownLayer"}}
    with caplog.at_level(logging.WARNING):
        assert await post_form(served, b"identity=%2B255700000001&text=echo+once") == 200
    assert await Message.objects.filter(direction="in", text="echo once").acount() == 1
    assert await Message.objects.filter(direction="out", text="once").acount() == 1
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings and {r.name for r in warnings} == {"smsrouter.contrib.httptester.live"}
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in warnings)
    assert "not published: ConnectionError: Redis is down" in warnings[0].getMessage()
