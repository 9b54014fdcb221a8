"""The public API: `incoming()` is the one entry point for inbound SMS, `send()` for outbound.

Each blocking function is the whole path; its `a`-twin is the same path taken from async
code: under the ASGI server concurrent calls share one trip to Django's database thread
(`smsrouter.groupcommit`), elsewhere each call makes its own.
"""

from datetime import datetime
from typing import Any

from smsrouter import dispatch, inbound, outbox
from smsrouter.backends import backends
from smsrouter.messages import IncomingMessage, OutgoingMessage
from smsrouter.recipients import Recipients


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
    not routed again: gateways retry webhooks. Returns once the message, its outcome and
    its replies are committed (inline mode) or it is stored (queued modes); replies are
    sent afterwards by the sender.
    """
    identity = _checked(backend_name, identity, text)
    return await inbound.together.submit((backend_name, identity, text, external_id, fields))


def incoming(
    backend_name: str,
    identity: str,
    text: str,
    *,
    external_id: str | None = None,
    fields: dict[str, Any] | None = None,
) -> IncomingMessage:
    """`aincoming()` for blocking code: views, shells, management commands, tasks."""
    identity = _checked(backend_name, identity, text)
    return inbound.accept_one((backend_name, identity, text, external_id, fields))


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
    the messages for later (an aware datetime). Each message is stored in the outbox
    first; the sender sends it once committed, and the returned objects carry each one's
    status as far as it is known then.
    """
    return await outbox.sends.submit((text, to, backend, at))


def send(
    text: str, to: Recipients, *, backend: str | None = None, at: datetime | None = None
) -> list[OutgoingMessage]:
    """`asend()` for blocking code. Where no server's sender runs in this process (a
    shell, a WSGI worker), the messages are sent here once committed."""
    return outbox.add(text, to, backend, at)
