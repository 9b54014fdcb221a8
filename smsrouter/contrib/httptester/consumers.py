"""/ws/httptester/<backend>/<identity>/: one conversation, live, one JSON message per frame."""

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import BaseChannelLayer

from smsrouter.contrib.httptester.live import fallback_layer, group, is_tester

NOT_A_TESTER = 4404  # close code: like HTTP's 404, in the range left to applications


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
