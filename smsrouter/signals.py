"""Signals other parts of a project may listen to."""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.dispatch import Signal

if TYPE_CHECKING:
    from smsrouter.models import Message

#: Messages were stored or changed status. Sent with `messages`, the Message rows (their
#: connection and backend loaded), inside the transaction that changed them: a receiver
#: that reaches outside (a WebSocket, a queue) should wait for `transaction.on_commit`.
#: Bulk updates send it too, unlike Django's post_save.
#:
#: A receiver that raises is logged (logger django.dispatch, with its traceback) and the
#: change stands: a notification must not turn an SMS already accepted into a 500, or make
#: the group commit store it again. A receiver that queries the database should do so in
#: a `transaction.atomic()` of its own, so that a failed query rolls back only that.
messages_changed = Signal()


def changed(messages: Sequence["Message"]) -> None:
    """Send messages_changed for these rows, if there are any and anyone listens."""
    if messages:
        messages_changed.send_robust(sender=type(messages[0]), messages=messages)

#: A number opted out. Sent with `connection` (the Connection) and `message`: the STOP
#: IncomingMessage, or None when a gateway's error said so (Twilio's 21610). Sent for
#: every STOP, even from a number already opted out, so that whatever it should end (a
#: conversation's session) ends; inside the transaction that routes or records it.
opted_out = Signal()
