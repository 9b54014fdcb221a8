"""An inbound message from the gateway's request to its replies.

The message is stored before it is routed, so that whatever happens to routing, the SMS
that a gateway handed us is never lost.
"""

import json
import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from smsrouter import gsm, outbound, signals
from smsrouter.connections import get_connection
from smsrouter.messages import IncomingMessage, OutgoingMessage
from smsrouter.models import Direction, Message, Status
from smsrouter.router import Router, drive

logger = logging.getLogger(__name__)


def store(
    backend_name: str,
    identity: str,
    text: str,
    external_id: str | None,
    fields: dict[str, Any] | None,
) -> tuple[IncomingMessage, bool]:
    """Persist the message ("received"); for an external_id seen before, the stored one.

    Returns the message and whether it is new, hence still to be routed.
    """
    connection = get_connection(backend_name, identity)
    values = {
        "direction": Direction.IN,
        "backend": connection.backend,
        "connection": connection,
        "text": text,
        "segments": gsm.segments(text),
        "status": Status.RECEIVED,
        "external_id": external_id,
        "fields": fields or {},
    }
    if external_id is None:
        return _created(Message.objects.create(**values), connection), True
    if (seen := _seen(connection, external_id)) is not None:
        return seen, False
    try:
        with transaction.atomic():
            return _created(Message.objects.create(**values), connection), True
    except IntegrityError:
        # A concurrent retry of the same webhook stored it first.
        seen = _seen(connection, external_id)
        if seen is None:
            raise
        return seen, False


def _created(record: Message, connection: Any) -> IncomingMessage:
    signals.changed([record])
    return IncomingMessage(record, connection)


def _seen(connection: Any, external_id: str) -> IncomingMessage | None:
    record = Message.objects.filter(
        backend=connection.backend, direction=Direction.IN, external_id=external_id
    ).first()
    if record is None:
        return None
    msg = IncomingMessage(record, connection)
    msg.responses = [
        OutgoingMessage(reply.text, connection, in_response_to=msg, record=reply)
        for reply in record.responses.order_by("pk")
    ]
    return msg


def route_blocking(msg: IncomingMessage) -> list[OutgoingMessage]:
    """Route with a new blocking Router, record the outcome, and store the replies.

    Returns the replies still to send (apps may cancel some). The caller sends them: in a
    webhook, on the event loop, so that this whole step is one trip to a worker thread.
    """
    router: Router | None = None
    status, error = Status.HANDLED, ""
    try:
        router = Router(blocking=True)
        drive(router.incoming(msg))
    except Exception as exc:
        logger.exception("routing message %s failed", msg.id)
        status, error = Status.FAILED, f"{type(exc).__name__}: {exc}"
    _finish(msg, status, error)
    if not msg.responses:
        return []
    return outbound.prepare(msg.responses, router)


async def route(msg: IncomingMessage) -> None:
    """Route the message with a new Router, record the outcome, and deliver the replies."""
    router: Router | None = None
    status, error = Status.HANDLED, ""
    try:
        router = Router()
        await router.incoming(msg)
    except Exception as exc:
        logger.exception("routing message %s failed", msg.id)
        status, error = Status.FAILED, f"{type(exc).__name__}: {exc}"
    await sync_to_async(_finish, thread_sensitive=True)(msg, status, error)
    if msg.responses:
        await outbound.deliver(msg.responses, router)


def _finish(msg: IncomingMessage, status: str, error: str) -> None:
    record = msg.record
    try:  # here, not in save(): a failed save would doom the caller's transaction
        json.dumps(msg.fields, cls=DjangoJSONEncoder)
        record.fields = msg.fields
    except (TypeError, ValueError) as exc:
        logger.error("message %s: fields are not JSON-serializable: %s", msg.id, exc)
        status, error = Status.FAILED, f"fields are not JSON-serializable: {exc}"
    record.status, record.error, record.updated_at = status, error, timezone.now()
    record.save(update_fields=["status", "error", "fields", "updated_at"])
    signals.changed([record])
