"""Backend and Connection rows by name, cached per process.

Every inbound message needs its Connection; looking it up costs two queries, and the same
numbers write again and again. Only rows known to be committed enter the cache (through
`on_commit`), so a transaction that rolls back, as every test does, leaves nothing stale;
deleting a row evicts it. The `sms` test harness, whose whole test is one transaction
that it forgets at teardown, trusts uncommitted rows instead (`trust_uncommitted()`).
"""

from collections import OrderedDict
from collections.abc import Callable
from functools import partial

from django.db import transaction
from django.db.models.signals import post_delete

from smsrouter import limits, statements
from smsrouter.models import Backend, Connection, Contact

MAX_CACHED_CONNECTIONS = 10_000
CHUNK = 500

_backends: dict[str, Backend] = {}
_trusting = False
_connections: "OrderedDict[tuple[str, str], Connection]" = OrderedDict()


def get_backend(name: str) -> Backend:
    """The Backend row for `name`, created on first use."""
    if (backend := _backends.get(name)) is not None:
        return backend
    backend, _ = Backend.objects.get_or_create(name=name)
    _once_committed(lambda: _backends.__setitem__(name, backend))
    return backend


def get_connection(backend_name: str, identity: str) -> Connection:
    """The Connection for `identity` on `backend_name`, with its backend loaded; ValueError
    for an identity no database can store."""
    key = (backend_name, identity)
    if (connection := _connections.get(key)) is not None:
        _connections.move_to_end(key)
        return connection
    _check(identity)
    backend = get_backend(backend_name)
    connection, _ = Connection.objects.get_or_create(backend=backend, identity=identity)
    connection.backend = backend
    _once_committed(lambda: _remember(key, connection))
    return connection


def get_connections(backend_name: str, identities: list[str]) -> list[Connection]:
    """Connections for many identities at once, in order: a query or two per 500 not yet
    cached, for sends and batches of webhooks; ValueError, before any is made, for an
    identity no database can store."""
    found: dict[str, Connection] = {}
    missing = []
    for identity in dict.fromkeys(identities):
        if (connection := _connections.get((backend_name, identity))) is not None:
            found[identity] = connection
        else:
            missing.append(_check(identity))
    backend = get_backend(backend_name)
    for start in range(0, len(missing), CHUNK):
        rows = statements.connections_of(backend.pk, missing[start:start + CHUNK])
        for identity, connection in rows.items():
            connection.backend = backend
            found[identity] = connection
            _once_committed(partial(_remember, (backend_name, identity), connection))
    return [found[identity] for identity in identities]


def _check(identity: str) -> str:
    """The identity, if every database can store it (smsrouter.limits); else ValueError,
    before any row is made. incoming() has refused such identities already: this is
    where send()'s recipients meet the rule."""
    if problem := limits.identity_problem(identity):
        raise ValueError(f"identity {identity[:40]!r} {problem}.")
    return identity


def update_contact(connection: Connection, **values: str) -> Contact:
    """The connection's contact with `values` set: its own, or a new one linked to it.

    The link is read from the locked row, not from `connection`, which may be this
    process's cached copy: it does not know of a contact that another process made, and
    two messages from one new number must not make two contacts."""
    with transaction.atomic():
        contact_id = (Connection.objects.select_for_update().filter(pk=connection.pk)
                      .values_list("contact_id", flat=True).get())
        contact = Contact.objects.filter(pk=contact_id).first() if contact_id else None
        if contact is None:
            contact = Contact.objects.create(**values)
            Connection.objects.filter(pk=connection.pk).update(contact=contact)
        else:
            for name, value in values.items():
                setattr(contact, name, value)
            contact.save(update_fields=list(values))
    connection.contact = contact
    return contact


def trust_uncommitted(trusting: bool) -> None:
    """Cache rows as soon as they are read or made, committed or not: for a test whose
    transaction is rolled back whole, after which `clear()` runs."""
    global _trusting
    _trusting = trusting


def _once_committed(remember: Callable[[], None]) -> None:
    if _trusting:
        remember()
    else:
        transaction.on_commit(remember, robust=True)


def _remember(key: tuple[str, str], connection: Connection) -> None:
    _connections[key] = connection
    if len(_connections) > MAX_CACHED_CONNECTIONS:
        _connections.popitem(last=False)


def clear() -> None:
    """Forget every cached row; for tests that flush the database."""
    _backends.clear()
    _connections.clear()


def _evict_backend(sender: type, instance: Backend, **kwargs: object) -> None:
    _backends.pop(instance.name, None)
    for key in [key for key in _connections if key[0] == instance.name]:
        del _connections[key]


def _evict_connection(sender: type, instance: Connection, **kwargs: object) -> None:
    for key, cached in list(_connections.items()):
        if cached.pk == instance.pk:
            del _connections[key]


post_delete.connect(_evict_backend, sender=Backend, dispatch_uid="smsrouter-evict-backend")
post_delete.connect(_evict_connection, sender=Connection, dispatch_uid="smsrouter-evict-connection")
