"""Live conversations: each stored or changed message of an httptester backend goes, once
committed, to the channel-layer group of its conversation, and from there to every page
watching it (channels_redis across processes; without CHANNEL_LAYERS, one in-memory layer
for this process, `fallback_layer`, which ConversationConsumer uses too).

A live update is a side effect: a channel layer that is down or refuses it is logged and
changes nothing else. Above all it must not raise out of the commit, where the group
commit would take it for a failed batch and store the batch's messages again one by one.
"""

import hashlib
import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from django.db import transaction

from smsrouter.backends import backends
from smsrouter.backends.httptester import HttpTesterBackend
from smsrouter.exceptions import UnknownBackend
from smsrouter.models import Message

logger = logging.getLogger(__name__)

#: The layer of live updates when CHANNEL_LAYERS configures none.
fallback_layer = InMemoryChannelLayer()


def channel_layer() -> BaseChannelLayer:
    """The default channel layer, or `fallback_layer` without CHANNEL_LAYERS."""
    layer = get_channel_layer()
    return fallback_layer if layer is None else layer


def group(backend_name: str, identity: str) -> str:
    """A group name for the conversation: channel layers allow only [a-zA-Z0-9_.-]."""
    digest = hashlib.sha256(f"{backend_name}\n{identity}".encode()).hexdigest()[:32]
    return f"httptester.{digest}"


def as_json(message: Message) -> dict[str, Any]:
    """One message as the conversation endpoint and the WebSocket frames show it."""
    return {
        "direction": message.direction,
        "text": message.text,
        "status": message.status,
        "created_at": message.created_at.isoformat(),
    }


def is_tester(backend_name: str) -> bool:
    try:
        return isinstance(backends[backend_name], HttpTesterBackend)
    except UnknownBackend:
        return False


def on_messages_changed(sender: type, messages: Iterable[Message], **kwargs: Any) -> None:
    if _nobody_watches(channel_layer()):  # a shell, a bulk send: no frame to make
        return
    frames = [
        (m.connection.backend.name, m.connection.identity, as_json(m))
        for m in messages if is_tester(m.connection.backend.name)
    ]
    if frames:
        def publish() -> None:
            _publish(frames)

        # robust: whatever escapes _publish is logged by Django, not raised out of the commit.
        transaction.on_commit(publish, robust=True)


def _publish(frames: list[tuple[str, str, dict[str, Any]]]) -> None:
    """One trip to the event loop per commit, and none when no page in this process
    watches the conversations (the in-memory layer's groups say so), as in a shell or a
    bulk send. A failure is one warning, without a traceback: a layer that is down would
    otherwise fill the log with one per commit."""
    try:
        layer = channel_layer()
        if _nobody_watches(layer):
            return
        in_memory = isinstance(layer, InMemoryChannelLayer)
        grouped = [(group(name, identity), frame) for name, identity, frame in frames]
        if in_memory:
            grouped = [(name, frame) for name, frame in grouped if layer.groups.get(name)]
        if grouped:
            async_to_sync(_send_all)(layer, grouped)
    except Exception as exc:
        logger.warning("live update of %d message(s) not published: %s: %s",
                       len(frames), type(exc).__name__, exc)


def _nobody_watches(layer: BaseChannelLayer) -> bool:
    """Whether no page in this process can be watching: an in-memory layer with no group.
    Any other layer may reach pages in other processes."""
    return isinstance(layer, InMemoryChannelLayer) and not layer.groups


async def _send_all(layer: BaseChannelLayer, frames: list[tuple[str, dict[str, Any]]]) -> None:
    for name, frame in frames:
        await layer.group_send(name, {"type": "conversation.message", "message": frame})
