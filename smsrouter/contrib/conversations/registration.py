"""Registration: a conversation that links the sender's connection to a named Contact.

What RapidSMS's registration app did with `register <name>`, as a dialogue: subclass
`Registration`, give it a step named "name" (or set `name_step`), and when the last
step is answered the connection gets a Contact of that name, in the routing transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from django.db import transaction

from smsrouter.contrib.conversations.definition import Conversation
from smsrouter.models import Connection, Contact

if TYPE_CHECKING:
    from smsrouter.contrib.conversations.models import Session
    from smsrouter.messages import IncomingMessage


def register(connection: Connection, name: str) -> Contact:
    """Link `connection` to a Contact called `name`: its own, renamed, or a new one.

    The link is read from the locked row, not from `connection`: that may be this
    process's cached copy, which does not know of a contact that another process made
    (LANG from a number with none makes one, with the number's language)."""
    name = name.strip()[:Contact._meta.get_field("name").max_length]
    with transaction.atomic():
        contact_id = (Connection.objects.select_for_update().filter(pk=connection.pk)
                      .values_list("contact_id", flat=True).get())
        if contact_id is None:
            contact = Contact.objects.create(name=name)
            Connection.objects.filter(pk=connection.pk).update(contact=contact)
        else:
            Contact.objects.filter(pk=contact_id).update(name=name)
            contact = Contact.objects.get(pk=contact_id)
    connection.contact = contact
    return contact


class Registration(Conversation):
    """A conversation whose answer to `name_step` becomes the sender's Contact name."""

    name_step: ClassVar[str] = "name"

    def finished(self, session: Session, msg: IncomingMessage) -> str:
        register(msg.connection, str(session.answers[self.name_step]))
        return super().finished(session, msg)
