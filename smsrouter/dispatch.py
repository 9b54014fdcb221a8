"""Where a stored message goes next, by SMSROUTER_PROCESSING.

* "inline" routes and sends in the caller's request: no worker to run; tests and the
  demo use it.
* "celery" hands the message's id to a Celery task once the row is committed; the
  request does not wait for routing.
* "channels" sends the id to the channel "smsrouter.incoming" (or "smsrouter.outgoing"),
  served by `manage.py runworker smsrouter.incoming smsrouter.outgoing`.

Only ids travel, and only after the commit that made the row: a task queue or channel
layer that loses or repeats one costs nothing, since workers claim the row before acting
and `smsrouter_recover` finds any row left behind.
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial

from asgiref.sync import async_to_sync, sync_to_async
from django.db import transaction
from django.utils import timezone

from smsrouter import conf, inbound, outbound
from smsrouter.exceptions import ConfigurationError
from smsrouter.messages import IncomingMessage, OutgoingMessage

INLINE, CELERY, CHANNELS = "inline", "celery", "channels"
MODES = (INLINE, CELERY, CHANNELS)
INCOMING_CHANNEL, OUTGOING_CHANNEL = "smsrouter.incoming", "smsrouter.outgoing"
#: Ids per task or channel message: enough to batch, few enough to spread.
IDS_PER_TASK = 100


def mode() -> str:
    """The configured processing mode; ConfigurationError if it is not one we have."""
    configured = conf.get("SMSROUTER_PROCESSING")
    if configured not in MODES:
        raise ConfigurationError(
            f"SMSROUTER_PROCESSING = {configured!r} is not one of {', '.join(map(repr, MODES))}."
        )
    return configured


async def route(msg: IncomingMessage) -> None:
    """Route a stored inbound message now, or once committed, in a worker."""
    if mode() == INLINE:
        await inbound.route(msg)
    else:
        await sync_to_async(transaction.on_commit, thread_sensitive=True)(
            partial(route_later, msg.id)
        )


async def send(messages: Sequence[OutgoingMessage], due_at: datetime | None = None) -> None:
    """Send stored, queued outgoing messages now (or when due), here or in a worker."""
    if mode() == INLINE:
        if due_at is None or due_at <= timezone.now():
            await outbound.send_now(messages)
        return
    await sync_to_async(transaction.on_commit, thread_sensitive=True)(_enqueue(messages, due_at))


def send_blocking(messages: Sequence[OutgoingMessage], due_at: datetime | None = None) -> None:
    """`send()` for a caller with no event loop."""
    if mode() == INLINE:
        if due_at is None or due_at <= timezone.now():
            outbound.send_now_blocking(messages)
        return
    transaction.on_commit(_enqueue(messages, due_at))


def _enqueue(messages: Sequence[OutgoingMessage], due_at: datetime | None) -> Callable[[], None]:
    ids = {name: [msg.id for msg in batch] for name, batch in outbound.by_backend(messages).items()}

    def enqueue() -> None:
        for backend_name, chunk in ids.items():
            send_later(backend_name, chunk, due_at)

    return enqueue


def route_later(*message_ids: int) -> None:
    """Hand inbound messages' ids to workers (celery and channels modes), in chunks: a
    worker routes each chunk in one transaction."""
    for chunk in in_chunks(message_ids):
        if mode() == CELERY:
            from smsrouter.tasks import route_messages

            route_messages.delay(chunk)
        else:
            _to_channel(INCOMING_CHANNEL, {"type": "smsrouter.route", "message_ids": chunk})


def send_later(backend_name: str, ids: Sequence[int], due_at: datetime | None = None) -> None:
    """Hand outgoing ids to workers, in chunks. Inline mode has no workers, and a channel
    layer cannot wait: the row's `due_at` is left to `smsrouter_recover` (or to the
    process holding the backend's link) there."""
    if mode() == INLINE:
        return
    celery = mode() == CELERY
    for chunk in in_chunks(ids):
        if celery:
            from smsrouter.tasks import send_messages

            send_messages.apply_async((backend_name, chunk), eta=due_at)
        elif due_at is None or due_at <= timezone.now():
            _to_channel(OUTGOING_CHANNEL, {"type": "smsrouter.send", "backend": backend_name,
                                           "message_ids": chunk})


def in_chunks(ids: Sequence[int]) -> list[list[int]]:
    """The ids as a task or channel message takes them."""
    return [list(ids[start:start + IDS_PER_TASK]) for start in range(0, len(ids), IDS_PER_TASK)]


def _to_channel(channel: str, message: dict[str, object]) -> None:
    from channels.layers import get_channel_layer

    async_to_sync(get_channel_layer().send)(channel, message)
