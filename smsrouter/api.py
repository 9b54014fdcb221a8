"""The public API: `incoming()` is the one entry point for inbound SMS, `send()` for outbound.

Each blocking function is the whole path; its `a`-twin is the same path taken from async
code: under the ASGI server concurrent calls share one trip to Django's database thread
(`smsrouter.groupcommit`), elsewhere each call makes its own.
"""

from datetime import datetime
from typing import Any

from smsrouter import dispatch, inbound, limits, outbox
from smsrouter.backends import backends
from smsrouter.languages import Text
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

    What no database can store is refused first, with BadInbound (a ValueError) naming
    the field; but a text is never refused: NUL and lone surrogates are stored as U+FFFD
    and the exact original kept in `fields` (see smsrouter.limits).
    """
    item = checked(backend_name, identity, text, external_id, fields)
    return await inbound.together.submit(item)


def incoming(
    backend_name: str,
    identity: str,
    text: str,
    *,
    external_id: str | None = None,
    fields: dict[str, Any] | None = None,
) -> IncomingMessage:
    """`aincoming()` for blocking code: views, shells, management commands, tasks."""
    return inbound.accept_one(checked(backend_name, identity, text, external_id, fields))


def checked(
    backend_name: str, identity: Any, text: Any, external_id: Any, fields: Any
) -> inbound.Submitted:
    """The message as it will be stored, the identity as the backend normalizes it: for a
    webhook that carries several messages, each is checked before any is stored.

    Refusals come before anything is written: UnknownBackend, ConfigurationError, and
    BadInbound (a ValueError) for a value no database can store (smsrouter.limits).
    """
    backend = backends[backend_name]  # UnknownBackend
    dispatch.mode()  # ConfigurationError
    identity, text, external_id, fields = limits.inbound(
        identity, text, external_id, fields, normalize=backend.normalize)
    return backend_name, identity, text, external_id, fields


async def asend(
    text: Text, to: Recipients, *, backend: str | None = None, at: datetime | None = None
) -> list[OutgoingMessage]:
    """Send `text` to each recipient: Connections, or identities on `backend`.

    `backend` may be left out when INSTALLED_BACKENDS has only one entry. `at` schedules
    the messages for later (an aware datetime). Each message is stored in the outbox
    first; the sender sends it once committed, and the returned objects carry each one's
    status as far as it is known then. A lazy text (gettext_lazy) is rendered in each
    recipient's language (`smsrouter.languages`). A text that is neither a string nor a
    lazy text, or an identity no database can store, is refused with a ValueError before anything is written; NUL and
    lone surrogates in the text are stored and sent as U+FFFD (smsrouter.limits).
    """
    return await outbox.sends.submit((text, to, backend, at))


def send(
    text: Text, to: Recipients, *, backend: str | None = None, at: datetime | None = None
) -> list[OutgoingMessage]:
    """`asend()` for blocking code. Where no server's sender runs in this process (a
    shell, a WSGI worker), the messages are sent here once committed."""
    return outbox.add(text, to, backend, at)
