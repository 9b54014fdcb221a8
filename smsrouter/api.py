"""The public API: `incoming()` is the one entry point for inbound SMS, `send()` for outbound."""

from datetime import datetime
from functools import partial
from typing import Any

from asgiref.sync import sync_to_async

from smsrouter import dispatch, inbound, intake, keptloop, outbound
from smsrouter.backends import backends
from smsrouter.messages import IncomingMessage, OutgoingMessage
from smsrouter.recipients import Recipients, outgoing
from smsrouter.router import all_sync


async def aincoming(
    backend_name: str,
    identity: str,
    text: str,
    *,
    external_id: str | None = None,
    fields: dict[str, Any] | None = None,
) -> IncomingMessage:
    """Accept one SMS from `identity` on `backend_name`: store it, then route it.

    A message whose `external_id` this backend has sent before is returned as stored and
    not routed again: gateways retry webhooks.
    """
    identity = _checked(backend_name, identity, text)
    if not all_sync():
        msg, is_new = await sync_to_async(inbound.store, thread_sensitive=True)(
            backend_name, identity, text, external_id, fields
        )
        if is_new:
            await dispatch.route(msg)
        return msg
    # One trip to a worker thread for all the database work and the apps' phases, shared
    # with concurrent requests; the replies' network I/O then runs on the event loop.
    msg, ready = await intake.together.submit((backend_name, identity, text, external_id, fields))
    if ready:
        await dispatch.send(ready)
    return msg


def incoming(
    backend_name: str,
    identity: str,
    text: str,
    *,
    external_id: str | None = None,
    fields: dict[str, Any] | None = None,
) -> IncomingMessage:
    """The blocking twin of `aincoming()`, for views, shells and management commands.

    With only `def` phases, everything up to the replies' sending runs in this thread.
    """
    if not all_sync():
        return keptloop.run(partial(
            aincoming, backend_name, identity, text, external_id=external_id, fields=fields))
    identity = _checked(backend_name, identity, text)
    msg, ready = intake.accept_one((backend_name, identity, text, external_id, fields))
    if ready:
        dispatch.send_blocking(ready)
    return msg


def _checked(backend_name: str, identity: str, text: str) -> str:
    """The identity as the backend normalizes it; refusals come before anything is written."""
    backend = backends[backend_name]  # UnknownBackend
    dispatch.mode()  # ConfigurationError
    if not isinstance(identity, str) or not identity:
        raise ValueError("identity must be a non-empty string.")
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, not {type(text).__name__}.")
    return backend.normalize(identity)


async def asend(
    text: str, to: Recipients, *, backend: str | None = None, at: datetime | None = None
) -> list[OutgoingMessage]:
    """Send `text` to each recipient: Connections, or identities on `backend`.

    `backend` may be left out when INSTALLED_BACKENDS has only one entry. `at` schedules
    the messages for later (an aware datetime). Each message is stored first; the returned
    objects carry each one's status.
    """
    if not all_sync():
        messages = await sync_to_async(outgoing, thread_sensitive=True)(text, to, backend, at)
        if messages:
            await outbound.deliver(messages, due_at=at)
        return messages
    # Stored together with concurrent calls' messages: one trip to a worker thread, one
    # INSERT and one commit for them all; the sending then runs on the event loop.
    messages, ready = await outbound.sends.submit((text, to, backend, at))
    if ready:
        await dispatch.send(ready, at)
    return messages


def send(
    text: str, to: Recipients, *, backend: str | None = None, at: datetime | None = None
) -> list[OutgoingMessage]:
    """The blocking twin of `asend()`."""
    if not all_sync():
        return keptloop.run(partial(asend, text, to, backend=backend, at=at))
    messages = outgoing(text, to, backend, at)
    if messages and (ready := outbound.prepare(messages, due_at=at)):
        dispatch.send_blocking(ready, at)
    return messages
