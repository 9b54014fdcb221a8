"""The hot path's SQL, put together from the models rather than compiled per call.

Django's ORM builds and compiles each query afresh. For the few statements that every
SMS costs (its row inserted, then its outcome recorded; the same for each reply; a new
number's Connection made) that took more time than the database itself: see "Where the
time goes" in bench/README.md. These statements differ only in how many rows or ids they
carry, so their SQL is put together from the model's own fields and table, and run
through Django's cursor: values are adapted by the fields, errors translated
(IntegrityError stays IntegrityError) and queries logged as the ORM's are.

A database that cannot return the rows it inserts (MySQL) gets the ORM instead, a row
at a time where ids are wanted.
"""

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F
from django.db.models.constants import OnConflict

from smsrouter.models import Connection, Message

#: Rows per INSERT and ids per UPDATE: under every database's limit on parameters
#: (PostgreSQL's is 65,535), and the database may ask for fewer rows (SQLite does).
ROWS_PER_INSERT = 500
IDS_PER_UPDATE = 1000

_meta = Message._meta
_INSERTED = [field for field in _meta.concrete_fields if not field.primary_key]


def insert(records: Sequence[Message]) -> None:
    """INSERT new Message rows with as few statements as the database allows; each
    record gets its pk. Several statements share one transaction."""
    if not records:
        return
    connection = _connection()
    if not connection.features.can_return_rows_from_bulk_insert:  # nor does bulk_create
        with _together(connection, len(records)):
            for record in records:
                record.save(force_insert=True, using=connection.alias)
        return
    quote = connection.ops.quote_name
    head = (f"INSERT INTO {quote(_meta.db_table)} "
            f"({', '.join(quote(field.column) for field in _INSERTED)}) VALUES ")
    row = f"({', '.join(['%s'] * len(_INSERTED))})"
    tail = f" RETURNING {quote(_meta.pk.column)}"
    size = max(1, min(ROWS_PER_INSERT, connection.ops.bulk_batch_size(_INSERTED, records)))
    chunks = [records[start:start + size] for start in range(0, len(records), size)]
    with _together(connection, len(chunks)), connection.cursor() as cursor:
        for chunk in chunks:
            params = [field.get_db_prep_save(field.pre_save(record, True), connection)
                      for record in chunk for field in _INSERTED]
            cursor.execute(head + ", ".join([row] * len(chunk)) + tail, params)
            for record, (pk,) in zip(chunk, cursor.fetchall(), strict=True):
                record.pk = pk
                record._state.adding, record._state.db = False, connection.alias


def update(ids: Sequence[int], values: dict[str, Any], *, only_status: Sequence[str] = ()) -> None:
    """UPDATE these Message rows' fields to `values`; with `only_status`, only the rows
    whose status is one of those. Several statements share one transaction."""
    if not ids:
        return
    connection = _connection()
    quote = connection.ops.quote_name
    fields = [_meta.get_field(name) for name in values]
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    prepared = [field.get_db_prep_save(values[field.name], connection) for field in fields]
    condition = ""
    if only_status:
        condition = f" AND {quote(_meta.get_field('status').column)} IN ({_marks(only_status)})"
    chunks = list(_chunked(ids, IDS_PER_UPDATE))
    with _together(connection, len(chunks)), connection.cursor() as cursor:
        for chunk in chunks:
            cursor.execute(
                f"UPDATE {quote(_meta.db_table)} SET {assignments} "
                f"WHERE {quote(_meta.pk.column)} IN ({_marks(chunk)}){condition}",
                [*prepared, *chunk, *only_status],
            )


def claim(ids: Sequence[int], now: datetime) -> list[int]:
    """Take those of these outgoing rows that are queued and due for the caller: status
    "sending", attempts + 1, updated_at `now`. One UPDATE, which a row can pass only once
    however many processes run it; the ids it took."""
    if not ids:
        return []
    connection = _connection()
    status, attempts = _meta.get_field("status"), _meta.get_field("attempts")
    due_at, updated_at = _meta.get_field("due_at"), _meta.get_field("updated_at")
    if not connection.features.can_return_rows_from_bulk_insert:  # no UPDATE ... RETURNING
        rows = Message.objects.select_for_update().filter(pk__in=ids, status="queued").exclude(
            due_at__gt=now)
        taken = list(rows.values_list("pk", flat=True))
        Message.objects.filter(pk__in=taken).update(
            status="sending", attempts=F("attempts") + 1, updated_at=now)
        return taken
    quote = connection.ops.quote_name
    when = updated_at.get_db_prep_save(now, connection)
    taken = []
    chunks = list(_chunked(ids, IDS_PER_UPDATE))
    with _together(connection, len(chunks)), connection.cursor() as cursor:
        for chunk in chunks:
            cursor.execute(
                f"UPDATE {quote(_meta.db_table)} SET {quote(status.column)} = %s, "
                f"{quote(attempts.column)} = {quote(attempts.column)} + 1, {quote(updated_at.column)} = %s "
                f"WHERE {quote(_meta.pk.column)} IN ({_marks(chunk)}) AND {quote(status.column)} = %s "
                f"AND ({quote(due_at.column)} IS NULL OR {quote(due_at.column)} <= %s) "
                f"RETURNING {quote(_meta.pk.column)}",
                ["sending", when, *chunk, "queued", when])
            taken += [pk for (pk,) in cursor.fetchall()]
    return taken


def connections_of(backend_id: int, identities: Sequence[str]) -> dict[str, Connection]:
    """The Connection rows of these identities on this backend, made where missing: one
    SELECT, and for new numbers one INSERT that skips any another process made meanwhile
    (a second SELECT finds those). Without their backend loaded."""
    connection = _connection(Connection)
    if not connection.features.can_return_rows_from_bulk_insert:
        Connection.objects.bulk_create(
            [Connection(backend_id=backend_id, identity=identity) for identity in identities],
            ignore_conflicts=True)
        return {c.identity: c for c in Connection.objects.filter(
            backend_id=backend_id, identity__in=identities)}
    meta, quote = Connection._meta, connection.ops.quote_name
    columns = [field.column for field in meta.concrete_fields]
    attnames = [field.attname for field in meta.concrete_fields]
    backend_column, identity_column = (meta.get_field(name).column for name in ("backend", "identity"))
    select = (f"SELECT {', '.join(map(quote, columns))} FROM {quote(meta.db_table)} "
              f"WHERE {quote(backend_column)} = %s AND {quote(identity_column)} IN ")
    found: dict[str, Connection] = {}

    def read(cursor: Any) -> None:
        for values in cursor.fetchall():
            row = Connection.from_db(connection.alias, attnames, values)
            found[row.identity] = row

    with connection.cursor() as cursor:
        cursor.execute(f"{select}({_marks(identities)})", [backend_id, *identities])
        read(cursor)
        missing = [identity for identity in identities if identity not in found]
        if missing:
            cursor.execute(
                f"{connection.ops.insert_statement(on_conflict=OnConflict.IGNORE)} "
                f"{quote(meta.db_table)} ({quote(backend_column)}, {quote(identity_column)}) "
                f"VALUES {', '.join(['(%s, %s)'] * len(missing))} "
                f"{connection.ops.on_conflict_suffix_sql([], OnConflict.IGNORE, [], [])} "
                f"RETURNING {', '.join(map(quote, columns))}",
                [value for identity in missing for value in (backend_id, identity)])
            read(cursor)
        if raced := [identity for identity in missing if identity not in found]:
            cursor.execute(f"{select}({_marks(raced)})", [backend_id, *raced])
            read(cursor)
    return found


def _connection(model: type[Any] = Message) -> BaseDatabaseWrapper:
    return connections[router.db_for_write(model)]


def _together(connection: BaseDatabaseWrapper, count: int) -> AbstractContextManager[Any]:
    """A transaction around several statements, as bulk_create has; one needs none."""
    if count > 1:
        return transaction.atomic(using=connection.alias, savepoint=False)
    return nullcontext()


def _marks(values: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def _chunked(ids: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]
