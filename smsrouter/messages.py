"""The messages apps see: plain objects over Message rows.

Apps read and annotate these while routing; they never hold a query open, so an
`async def` phase can read `msg.connection.backend.name` without touching the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from smsrouter.models import Connection, Message, Status


class IncomingMessage:
    """An SMS that arrived, and the replies apps gave it while it was routed."""

    def __init__(self, record: Message, connection: Connection) -> None:
        self.record = record
        #: Who sent it, with `connection.backend` and `connection.contact` at hand.
        self.connection = connection
        #: The text as stored (see `smsrouter.limits` for what storing may replace).
        self.text: str = record.text
        #: The backend's extra fields, and what earlier apps' `parse()` added.
        self.fields: dict[str, Any] = dict(record.fields)
        #: The replies given so far, in order.
        self.responses: list[OutgoingMessage] = []

    @property
    def id(self) -> int:
        return self.record.pk

    @property
    def received_at(self) -> datetime:
        return self.record.created_at

    def respond(self, text: str) -> OutgoingMessage:
        """Queue a reply to the sender; it is stored and sent once routing finishes."""
        reply = OutgoingMessage(text, self.connection, in_response_to=self)
        self.responses.append(reply)
        return reply

    def __repr__(self) -> str:
        return f"<IncomingMessage {self.id} from {self.connection.identity}: {self.text!r}>"


class OutgoingMessage:
    """An SMS to one recipient. `id` is set once it is stored (status "queued")."""

    def __init__(
        self,
        text: str,
        connection: Connection,
        *,
        in_response_to: IncomingMessage | None = None,
        record: Message | None = None,
    ) -> None:
        self.text = text
        self.connection = connection
        self.in_response_to = in_response_to
        self.record = record
        #: "queued" until the sender records an outcome: "sent", "delivered" or "failed".
        self.status: str = record.status if record else Status.QUEUED
        #: The gateway's id for it, once the gateway took it.
        self.external_id: str | None = record.external_id if record else None
        #: Why it failed, or why its last try did.
        self.error: str = record.error if record else ""

    @property
    def id(self) -> int | None:
        return self.record.pk if self.record else None

    @property
    def backend_name(self) -> str:
        return self.connection.backend.name

    def __repr__(self) -> str:
        return f"<OutgoingMessage {self.id} to {self.connection.identity}: {self.text!r} ({self.status})>"
