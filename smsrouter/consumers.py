"""Channels workers for "smsrouter.incoming" and "smsrouter.outgoing".

Channel layers deliver at most once, and `runworker` drops what it had queued for a
consumer whose handler raises: so the id is only a wake-up call, every exception is caught
here, and the database stays the truth (`smsrouter_recover --every` finds what was lost,
and hands on the retries that a channel layer cannot delay).
"""

import logging
from typing import Any

from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async

from smsrouter import inbound, sender

logger = logging.getLogger(__name__)


class IncomingWorker(AsyncConsumer):
    async def smsrouter_route(self, event: dict[str, Any]) -> None:  # type "smsrouter.route"
        try:
            await database_sync_to_async(inbound.route_ids)(event["message_ids"])
        except Exception:
            logger.exception("routing messages %s failed", event.get("message_ids"))


class OutgoingWorker(AsyncConsumer):
    async def smsrouter_send(self, event: dict[str, Any]) -> None:  # type "smsrouter.send"
        try:
            await sender.send_due(ids=event["message_ids"], backend_names=[event["backend"]])
        except Exception:
            logger.exception("sending messages %s failed", event.get("message_ids"))
