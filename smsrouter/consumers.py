"""Channels workers for "smsrouter.incoming" and "smsrouter.outgoing".

Channel layers deliver at most once, and `runworker` drops what it had queued for a
consumer whose handler raises: so the id is only a wake-up call, every exception is caught
here, and the database stays the truth (`smsrouter_recover` finds what was lost).
"""

import logging
from typing import Any

from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async

from smsrouter import workers

logger = logging.getLogger(__name__)


class IncomingWorker(AsyncConsumer):
    async def smsrouter_route(self, event: dict[str, Any]) -> None:  # type "smsrouter.route"
        try:
            await database_sync_to_async(workers.route_by_ids)(event["message_ids"])
        except Exception:
            logger.exception("routing messages %s failed", event.get("message_ids"))


class OutgoingWorker(AsyncConsumer):
    async def smsrouter_send(self, event: dict[str, Any]) -> None:  # type "smsrouter.send"
        try:
            await database_sync_to_async(workers.send_by_ids)(event["backend"], event["message_ids"])
        except Exception:
            logger.exception("sending messages %s failed", event.get("message_ids"))
