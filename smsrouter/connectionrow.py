"""What the hot path's statements decide from a number's Connection row, and read back of it.

Opt-out is decided in the statements that run anyway (smsrouter.statements), from the
database's own Connection row: a cached row in some process may not know yet that its
number sent STOP to another. The INSERT of an outgoing message stores it "failed"
(OPTED_OUT) when its number opted out, and the claim takes no row of an opted-out number.
A STOP or START confirmation (fields[EXEMPT], set by smsrouter.keywords) is the one
message that goes out all the same.

The INSERT of incoming messages, and a worker's claim of them, read the number's contact
and whether it has an active conversation session from the same row, into the record's
connection: routing then knows both without a query of its own (`connection_read()`).
"""

from collections.abc import Sequence
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Q

from smsrouter.models import OPTED_OUT, Connection, Direction, Message, Status

#: The fields key of an outgoing message that is sent even to an opted-out number: the
#: STOP and START confirmations, which name the keyword they confirm.
EXEMPT = "confirms"
#: An outgoing row that must not be sent: its number opted out and it is not exempt.
OPTED_OUT_Q = Q(connection__opted_out_at__isnull=False) & ~Q(fields__has_key=EXEMPT)
#: What an incoming message's INSERT reads back from its connection's row.
READ = ("contact", "in_session")
_READ_MARK = "_smsrouter_connection_read"


def checked(record: Message) -> bool:
    """Whether the record's INSERT looks at its number's opt-out."""
    return record.direction == Direction.OUT and EXEMPT not in record.fields


def fail(record: Message) -> None:
    """The record as its INSERT stored it for an opted-out number."""
    record.status, record.error, record.attempts = Status.FAILED, OPTED_OUT, 0


def opted_out_among(connection_ids: Sequence[int]) -> set[int]:
    """Which of these connections opted out: for a database whose INSERT cannot decide it."""
    if not connection_ids:
        return set()
    return set(Connection.objects.filter(pk__in=set(connection_ids), opted_out_at__isnull=False)
               .values_list("pk", flat=True))


def opted_out_case(connection: BaseDatabaseWrapper) -> str:
    """SQL for a value that depends on the opt-out of the connection whose pk is its first
    parameter: the second parameter when it opted out, else the third."""
    quote, meta = connection.ops.quote_name, Connection._meta
    return (f"CASE WHEN EXISTS (SELECT 1 FROM {quote(meta.db_table)} "
            f"WHERE {quote(meta.pk.column)} = %s AND "
            f"{quote(meta.get_field('opted_out_at').column)} IS NOT NULL) "
            "THEN %s ELSE %s END")


def read_columns(connection: BaseDatabaseWrapper) -> list[str]:
    """SQL for READ's columns of each inserted Message row's connection, for RETURNING."""
    quote, meta = connection.ops.quote_name, Connection._meta
    own = (f"{quote(Message._meta.db_table)}."
           f"{quote(Message._meta.get_field('connection').column)}")
    return [f"(SELECT {quote(meta.get_field(name).column)} FROM {quote(meta.db_table)} "
            f"WHERE {quote(meta.pk.column)} = {own})" for name in READ]


_may_send_sql: dict[str, tuple[str, list[Any]]] = {}


def may_send(connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
    """SQL that is true for a Message row that may be sent: its number did not opt out,
    or it is exempt. Compiled from the ORM's own JSON lookup, as each database spells it,
    once per database vendor."""
    if (made := _may_send_sql.get(connection.vendor)) is None:
        made = _may_send_sql[connection.vendor] = _make_may_send(connection)
    return made


def _make_may_send(connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
    quote = connection.ops.quote_name
    exempt = Message.objects.filter(fields__has_key=EXEMPT).query
    exempt_sql, exempt_params = exempt.get_compiler(connection=connection).compile(exempt.where)
    table = quote(Connection._meta.db_table)
    sql = (f"(NOT EXISTS (SELECT 1 FROM {table} WHERE {table}.{quote(Connection._meta.pk.column)} = "
           f"{quote(Message._meta.db_table)}.{quote(Message._meta.get_field('connection').column)} AND "
           f"{table}.{quote(Connection._meta.get_field('opted_out_at').column)} IS NOT NULL) "
           f"OR {exempt_sql})")
    return sql, list(exempt_params)


def connection_read(record: Message) -> bool:
    """Whether the record's connection holds its row's `contact_id` and `in_session` as
    read in the transaction that routes the record (its INSERT, or a worker's claim):
    then a cached copy is not stale for this message, and its routing need not ask the
    database."""
    return getattr(record, _READ_MARK, False)


def set_read(record: Message, contact_id: int | None, in_session: Any) -> None:
    """Bring the record's cached connection up to date with its row, as just read."""
    if not Message.connection.is_cached(record):
        return  # no connection object to bring up to date
    connection = record.connection
    if connection.contact_id != contact_id:  # linked elsewhere: its cached contact is stale
        connection._state.fields_cache.pop(Connection.contact.field.cache_name, None)
        connection.contact_id = contact_id
    connection.in_session = bool(in_session)
    setattr(record, _READ_MARK, True)


def read_connections(records: Sequence[Message]) -> None:
    """What the INSERT reads back where it cannot: one query for the records' connections."""
    if not records:
        return
    rows = {pk: read for pk, *read in Connection.objects.filter(
        pk__in={record.connection_id for record in records}).values_list("pk", *(
            Connection._meta.get_field(name).attname for name in READ))}
    for record in records:
        set_read(record, *rows[record.connection_id])


def share_claimed(records: Sequence[Message]) -> None:
    """Records a worker claimed with their connections (select_related), read in the
    transaction that routes them: one Connection object per number, so that what routing
    one message changes in it (a session opened) is seen by the next from that number,
    each marked read, so routing asks the database nothing more of it."""
    shared: dict[int, Connection] = {}
    for record in records:
        record.connection = shared.setdefault(record.connection_id, record.connection)
        setattr(record, _READ_MARK, True)
