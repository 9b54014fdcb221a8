"""Where a stored message goes next, by SMSROUTER_PROCESSING.

"inline" routes and sends in the caller's request: no worker to run, and what tests and
the demo use. The task-queue modes of ARCHITECTURE.md join MODES when they are built.
"""

from collections.abc import Sequence

from smsrouter import conf, inbound, outbound
from smsrouter.exceptions import ConfigurationError
from smsrouter.messages import IncomingMessage, OutgoingMessage

INLINE = "inline"
MODES = (INLINE,)


def mode() -> str:
    """The configured processing mode; ConfigurationError if it is not one we have."""
    configured = conf.get("SMSROUTER_PROCESSING")
    if configured not in MODES:
        raise ConfigurationError(
            f"SMSROUTER_PROCESSING = {configured!r} is not one of {', '.join(map(repr, MODES))}."
        )
    return configured


async def route(msg: IncomingMessage) -> None:
    """Route a stored inbound message."""
    mode()
    await inbound.route(msg)


async def send(messages: Sequence[OutgoingMessage]) -> None:
    """Send stored, queued outgoing messages."""
    mode()
    await outbound.send_now(messages)
