"""Who a send() goes to: Connections, or identities on a backend, as Connections.

Recipients are checked and normalized before anything is written: a bad one is refused
with a message that names it, and nothing is stored.
"""

from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from smsrouter import conf
from smsrouter.backends import backends
from smsrouter.addressbook import get_connections
from smsrouter.messages import OutgoingMessage
from smsrouter.models import Connection

Recipients = Connection | str | Iterable[Connection | str]


def messages_for(text: str, to: Recipients, backend: str | None, at: datetime | None) -> list[OutgoingMessage]:
    """One unsaved OutgoingMessage per recipient; ValueError or UnknownBackend for a bad
    recipient, backend or `at`."""
    if at is not None and timezone.is_naive(at):
        raise ValueError("at= must be an aware datetime, e.g. timezone.now() + timedelta(hours=1).")
    recipients = [to] if isinstance(to, (str, Connection)) else list(to)
    return [OutgoingMessage(text, connection) for connection in _connections_for(recipients, backend)]


def _connections_for(recipients: list[Connection | str], backend: str | None) -> list[Connection]:
    if backend is not None:
        backends[backend]  # UnknownBackend
    identities: list[str] = []
    for recipient in recipients:
        if isinstance(recipient, Connection):
            continue
        if not isinstance(recipient, str) or not recipient:
            raise ValueError(f"Recipients must be Connections or non-empty strings, not {recipient!r}.")
        identities.append(recipient)
    if identities:
        name = backend or _only_backend()
        by_identity = iter(get_connections(name, [backends[name].normalize(i) for i in identities]))
    connections = []
    for recipient in recipients:
        if not isinstance(recipient, Connection):
            connections.append(next(by_identity))
            continue
        connection = recipient
        if not Connection._meta.get_field("backend").is_cached(connection):
            connection = Connection.objects.select_related("backend").get(pk=connection.pk)
        backends[connection.backend.name]  # UnknownBackend
        if backend is not None and connection.backend.name != backend:
            raise ValueError(
                f"Connection {connection} is on backend {connection.backend.name!r}, "
                f"not {backend!r}; leave backend= out to use the connection's own."
            )
        connections.append(connection)
    return connections


def _only_backend() -> str:
    names = list(conf.installed_backends())
    if len(names) != 1:
        raise ValueError(
            "send() to a phone number needs backend=... when INSTALLED_BACKENDS has "
            f"{len(names)} entries ({', '.join(names) or 'none'})."
        )
    return names[0]
