"""Where a stored message goes next, by SMSROUTER_PROCESSING: the only reader of it.

* "inline" routes in the caller (the request that brought the message), and sends through
  the sender of this process: the scheduler that the ASGI lifespan (or `manage.py
  smsrouter_sender`) runs, woken as soon as the replies are committed; where no such
  scheduler runs (a shell, a WSGI worker), in the caller once committed.
* "celery" hands ids to Celery tasks once the rows are committed; workers route and send.
* "channels" sends ids to the channels "smsrouter.incoming" and "smsrouter.outgoing",
  served by `manage.py runworker smsrouter.incoming smsrouter.outgoing`.

Only ids travel, and only after the commit that made the rows: a task queue or a channel
layer that loses or repeats one costs nothing, since routing and sending claim the row
first and the sweep finds any row left behind. Tasks are sent by name, so this module
imports neither the tasks nor the consumers that call back into the pipeline.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from asgiref.sync import async_to_sync
from django.db import transaction
from django.utils import timezone

from smsrouter import conf, sender
from smsrouter.backends import backends
from smsrouter.exceptions import ConfigurationError
from smsrouter.messages import OutgoingMessage

INLINE, CELERY, CHANNELS = "inline", "celery", "channels"
MODES = (INLINE, CELERY, CHANNELS)
INCOMING_CHANNEL, OUTGOING_CHANNEL = "smsrouter.incoming", "smsrouter.outgoing"
ROUTE_TASK, SEND_TASK = "smsrouter.route_messages", "smsrouter.send_messages"
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


def routes_here() -> bool:
    """Whether the caller that stored an inbound message routes it too (inline mode)."""
    return mode() == INLINE


@dataclass(frozen=True)
class Duties:
    """What the scheduler of a server process (or of `smsrouter_sender`) takes on."""

    backends: tuple[str, ...]  # whose queued messages it sends
    sweeps: bool  # re-routes inbound rows and re-queues sends that a crash left behind
    periodic: bool  # runs the apps' @periodic jobs


def server_duties() -> Duties:
    """Inline mode: everything. Queued modes leave sending, sweeping and periodic jobs to
    workers and beat; a server still sends through a link only it holds (SMPP)."""
    names = tuple(backends.names())
    if mode() == INLINE:
        return Duties(names, sweeps=True, periodic=True)
    return Duties(tuple(name for name in names if backends[name].holds_link), False, False)


def caller_sends(due_at: datetime | None = None) -> bool:
    """Whether the caller storing outgoing messages sends them itself, at once, when its
    transaction commits (inline mode, no scheduler in this process, due now). The outbox
    then stores them already claimed, saving a statement and a commit for each: the
    in-process routing benchmark went from 0.87 to 0.95 of the previous code with it
    (medians of five runs each, one machine, one run)."""
    return (mode() == INLINE and not sender.serving_locally()
            and (due_at is None or due_at <= timezone.now()))


def accepted(message_ids: Sequence[int]) -> None:
    """Stored inbound messages that the caller does not route: to workers once committed."""
    if message_ids:
        transaction.on_commit(partial(route_later, *message_ids), robust=True)


def queued(messages: Sequence[OutgoingMessage], due_at: datetime | None = None) -> None:
    """Stored outgoing messages: to whoever sends them, once their transaction commits."""
    if messages:
        transaction.on_commit(partial(_hand_on, list(messages), due_at), robust=True)


def _hand_on(messages: list[OutgoingMessage], due_at: datetime | None) -> None:
    if mode() != INLINE:
        for backend_name, batch in sender.by_backend(messages).items():
            send_later(backend_name, [msg.id for msg in batch], due_at)
    elif sender.wake_local(messages, due_at):
        return
    elif due_at is None or due_at <= timezone.now():
        sender.send_blocking(messages)
    # Due later and no scheduler here: the next one to sweep (smsrouter_sender) sends it.


def route_later(*message_ids: int) -> None:
    """Hand inbound ids to workers (celery and channels modes), in chunks: a worker routes
    each chunk in one transaction."""
    for chunk in in_chunks(message_ids):
        if mode() == CELERY:
            _celery().send_task(ROUTE_TASK, args=(chunk,))
        else:
            _to_channel(INCOMING_CHANNEL, {"type": "smsrouter.route", "message_ids": chunk})


def send_later(backend_name: str, ids: Sequence[int], due_at: datetime | None = None) -> None:
    """Hand outgoing ids to workers, in chunks. A channel layer cannot wait, so a message
    due later is left to the sweep there (`smsrouter_recover --every`)."""
    for chunk in in_chunks(ids):
        if mode() == CELERY:
            _celery().send_task(SEND_TASK, args=(backend_name, chunk), eta=due_at)
        elif due_at is None or due_at <= timezone.now():
            _to_channel(OUTGOING_CHANNEL, {"type": "smsrouter.send", "backend": backend_name,
                                           "message_ids": chunk})


def in_chunks(ids: Sequence[int]) -> list[list[int]]:
    """The ids as a task or channel message takes them."""
    return [list(ids[start:start + IDS_PER_TASK]) for start in range(0, len(ids), IDS_PER_TASK)]


def _celery():  # type: ignore[no-untyped-def]
    from celery import current_app

    return current_app


def _to_channel(channel: str, message: dict[str, object]) -> None:
    from channels.layers import get_channel_layer

    async_to_sync(get_channel_layer().send)(channel, message)
