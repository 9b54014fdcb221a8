"""/ws/httptester/<backend>/<identity>/: one conversation, live, one JSON message per frame.

The tester's own rule (`access`) decides who may watch, from the session's user (which
AuthMiddlewareStack in smsrouter.asgi puts in the scope) and the client's address (which
the server does), once Channels' AllowedHostsOriginValidator has refused other sites' pages.
"""

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import BaseChannelLayer

from smsrouter.contrib.httptester import access
from smsrouter.contrib.httptester.live import fallback_layer, group, is_tester

# Close codes, like HTTP's statuses, in the range left to applications.
NOT_A_TESTER = 4404  # the tester is off, or the backend is no httptester
FORBIDDEN = 4403  # neither staff nor, with DEBUG on, on this machine


class ConversationConsumer(AsyncJsonWebsocketConsumer):
    """Sends the frames that live.py publishes for one conversation, on the same layer."""

    @property
    def channel_layer(self) -> BaseChannelLayer:
        return self._channel_layer

    @channel_layer.setter
    def channel_layer(self, layer: BaseChannelLayer | None) -> None:
        # AsyncConsumer.__call__ assigns get_channel_layer(alias), None without
        # CHANNEL_LAYERS: then the layer that live.py publishes to.
        self._channel_layer = fallback_layer if layer is None else layer

    async def connect(self) -> None:
        route = self.scope["url_route"]["kwargs"]
        if not access.enabled():
            await self.close(code=NOT_A_TESTER)
            return
        client = self.scope.get("client") or (None, None)
        if not access.allowed(self.scope.get("user"), client[0]):
            await self.close(code=FORBIDDEN)
            return
        if not is_tester(route["backend_name"]):
            await self.close(code=NOT_A_TESTER)
            return
        self.group = group(route["backend_name"], route["identity"].strip())
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def conversation_message(self, event: dict[str, Any]) -> None:  # "conversation.message"
        await self.send_json(event["message"])
