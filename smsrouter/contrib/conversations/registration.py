"""Registration: a conversation that links the sender's connection to a named Contact.

What RapidSMS's registration app did with `register <name>`, as a dialogue: subclass
`Registration`, give it a step named "name" (or set `name_step`), and when the last
step is answered the connection gets a Contact of that name, in the routing transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from smsrouter.addressbook import update_contact
from smsrouter.contrib.conversations.definition import Conversation
from smsrouter.models import Connection, Contact

if TYPE_CHECKING:
    from smsrouter.contrib.conversations.models import Session
    from smsrouter.messages import IncomingMessage


def register(connection: Connection, name: str) -> Contact:
    """Link `connection` to a Contact called `name`: its own, renamed (keeping the
    language LANG gave it, perhaps in another process), or a new one."""
    return update_contact(connection,
                          name=name.strip()[:Contact._meta.get_field("name").max_length])


class Registration(Conversation):
    """A conversation whose answer to `name_step` becomes the sender's Contact name."""

    name_step: ClassVar[str] = "name"

    def finished(self, session: Session, msg: IncomingMessage) -> str:
        register(msg.connection, str(session.answers[self.name_step]))
        return super().finished(session, msg)
