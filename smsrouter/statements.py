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

Opt-out and the read-back of each incoming message's Connection row are decided inside
these statements; what they decide from that row is smsrouter.connectionrow's.
"""

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F
from django.db.models.constants import OnConflict
from django.utils import timezone

from smsrouter import connectionrow
from smsrouter.models import OPTED_OUT, Connection, Direction, Message, Status

#: Rows per INSERT and ids per UPDATE: under every database's limit on parameters
#: (PostgreSQL's is 65,535), and the database may ask for fewer rows (SQLite does).
ROWS_PER_INSERT = 500
IDS_PER_UPDATE = 1000

_meta = Message._meta
_INSERTED = [field for field in _meta.concrete_fields if not field.primary_key]
#: What an outgoing message's INSERT decides from its connection's row, not its own
#: values: {position among _INSERTED: its value when the number opted out}.
_DECIDED: dict[int, Any] = {
    _INSERTED.index(_meta.get_field(name)): failed
    for name, failed in (("status", str(Status.FAILED)), ("error", OPTED_OUT), ("attempts", 0))}
#: The names of the fields whose preparation for the database gives back a plain str or
#: int unchanged, on every database Django supports: text, integers and keys. None too,
#: and for every other field but JSON (where None may mean JSON's null).
_PLAIN = frozenset(field.name for field in _meta.concrete_fields if field.get_internal_type() in (
    "CharField", "TextField", "PositiveSmallIntegerField", "ForeignKey"))
_NONE_IS_NULL = frozenset(field.name for field in _meta.concrete_fields
                          if field.get_internal_type() != "JSONField")
#: How each of _INSERTED gets its value: (field, attname, stamped with the time at INSERT
#: as auto_now and auto_now_add are, plain, None is NULL).
_PLAN = [(field, field.attname,
          getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False),
          field.name in _PLAIN, field.name in _NONE_IS_NULL)
         for field in _INSERTED]


def insert(records: Sequence[Message]) -> None:
    """INSERT new Message rows with as few statements as the database allows; each
    record gets its pk. Several statements share one transaction.

    An outgoing record whose number opted out is stored, and comes back, "failed" with
    OPTED_OUT and no attempt, unless it is exempt (connectionrow.EXEMPT). An incoming record's
    connection gets its row's `contact_id` and `in_session` as they are now.
    """
    if not records:
        return
    connection = _connection()
    if not connection.features.can_return_rows_from_bulk_insert:  # nor does bulk_create
        with _together(connection, len(records)):
            opted_out = connectionrow.opted_out_among([r.connection_id for r in records if connectionrow.checked(r)])
            for record in records:
                if connectionrow.checked(record) and record.connection_id in opted_out:
                    connectionrow.fail(record)
                record.save(force_insert=True, using=connection.alias)
            connectionrow.read_connections([r for r in records if r.direction == Direction.IN])
        return
    sql = _insert_sql.get(connection.vendor) or _make_insert_sql(connection)
    size = max(1, min(ROWS_PER_INSERT, connection.ops.bulk_batch_size(_INSERTED, records)))
    chunks = [records[start:start + size] for start in range(0, len(records), size)]
    now = timezone.now()
    stamp = _meta.get_field("created_at").get_db_prep_save(now, connection)
    with _together(connection, len(chunks)), connection.cursor() as cursor:
        for chunk in chunks:
            rows, params = [], []
            for record in chunk:
                values = _values(record, now, stamp, connection)
                if connectionrow.checked(record):
                    rows.append(sql.checked)
                    for n, value in enumerate(values):
                        if n in _DECIDED:
                            params += (record.connection_id, _DECIDED[n], value)
                        else:
                            params.append(value)
                else:
                    rows.append(sql.plain)
                    params += values
            inbound = any(record.direction == Direction.IN for record in chunk)
            cursor.execute(sql.head + ", ".join(rows) + (sql.tail_in if inbound else sql.tail),
                           params)
            for record, (pk, status, *read) in zip(chunk, cursor.fetchall(), strict=True):
                record.pk = pk
                record._state.adding, record._state.db = False, connection.alias
                if status == Status.FAILED and record.status != Status.FAILED:
                    connectionrow.fail(record)
                if record.direction == Direction.IN:
                    connectionrow.set_read(record, *read)


def _values(record: Message, now: datetime, stamp: Any, connection: BaseDatabaseWrapper) -> list[Any]:
    """The record's values for its INSERT, as `Model.save()` would prepare them, its times
    stamped `now` (one instant for the whole INSERT; `stamp` is it prepared, the same for
    both stamped fields, created_at and updated_at, as both are DateTimeFields).

    The time is prepared once per INSERT, not once per row and field: Django's per-field
    preparation was a tenth of `incoming()`'s time, in a profile of
    bench/routing_vs_rapidsms.py.
    """
    values = []
    for field, attname, stamped, plain, none_is_null in _PLAN:
        if stamped:
            setattr(record, attname, now)
            values.append(stamp)
        else:
            values.append(_prepared(field, getattr(record, attname), connection, plain, none_is_null))
    return values


def _prepared(field: Any, value: Any, connection: BaseDatabaseWrapper, plain: bool,
              none_is_null: bool) -> Any:
    """`field.get_db_prep_save(value)`, without its calls where they give back the value."""
    if value is None:
        if none_is_null:
            return None
    elif plain and type(value) in (str, int):
        return value
    return field.get_db_prep_save(value, connection)


@dataclass(frozen=True)
class _InsertSql:
    head: str
    plain: str  # a row's VALUES as given
    checked: str  # a row's VALUES, with _DECIDED's columns decided by its connection's row
    tail: str
    tail_in: str  # `tail`, and each row's connection's contact_id and in_session


_insert_sql: dict[str, _InsertSql] = {}


def _make_insert_sql(connection: BaseDatabaseWrapper) -> _InsertSql:
    """The INSERT's parts for this database vendor, made once: put together for each
    call, they cost more than the statement's own work on SQLite."""
    quote = connection.ops.quote_name
    when = connectionrow.opted_out_case(connection)
    read = connectionrow.read_columns(connection)
    tail = f" RETURNING {quote(_meta.pk.column)}, {quote(_meta.get_field('status').column)}"
    made = _insert_sql[connection.vendor] = _InsertSql(
        head=(f"INSERT INTO {quote(_meta.db_table)} "
              f"({', '.join(quote(field.column) for field in _INSERTED)}) VALUES "),
        plain=f"({', '.join(['%s'] * len(_INSERTED))})",
        checked=f"({', '.join(when if n in _DECIDED else '%s' for n in range(len(_INSERTED)))})",
        tail=tail,
        tail_in=f"{tail}, {', '.join(read)}")
    return made


def update(ids: Sequence[int], values: dict[str, Any], *, only_status: Sequence[str] = ()) -> None:
    """UPDATE these Message rows' fields to `values`; with `only_status`, only the rows
    whose status is one of those. Several statements share one transaction."""
    if not ids:
        return
    connection = _connection()
    prepared = [_prepared(_meta.get_field(name), value, connection, name in _PLAIN, name in _NONE_IS_NULL)
                for name, value in values.items()]
    chunks = list(_chunked(ids, IDS_PER_UPDATE))
    with _together(connection, len(chunks)), connection.cursor() as cursor:
        for chunk in chunks:
            cursor.execute(_update_sql(connection, tuple(values), len(chunk), len(only_status)),
                           [*prepared, *chunk, *only_status])


#: The UPDATE texts made so far, by vendor and shape; bounded, as the id counts vary.
_update_texts: dict[tuple[str, tuple[str, ...], int, int], str] = {}


def _update_sql(connection: BaseDatabaseWrapper, names: tuple[str, ...], ids: int, statuses: int) -> str:
    """The UPDATE's text, made once per shape rather than put together for every call
    (quoting each column again); most shapes are of one id or a few."""
    key = (connection.vendor, names, ids, statuses)
    if (sql := _update_texts.get(key)) is not None:
        return sql
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(_meta.get_field(name).column)} = %s" for name in names)
    condition = ""
    if statuses:
        condition = f" AND {quote(_meta.get_field('status').column)} IN ({_marks(range(statuses))})"
    sql = (f"UPDATE {quote(_meta.db_table)} SET {assignments} "
           f"WHERE {quote(_meta.pk.column)} IN ({_marks(range(ids))}){condition}")
    if len(_update_texts) < 512:
        _update_texts[key] = sql
    return sql


def claim(ids: Sequence[int], now: datetime) -> list[int]:
    """Take those of these outgoing rows that are queued and due for the caller: status
    "sending", attempts + 1, updated_at `now`. One UPDATE, which a row can pass only once
    however many processes run it; the ids it took. A row whose number opted out is not
    taken (unless exempt): `fail_opted_out()` is for those."""
    if not ids:
        return []
    connection = _connection()
    status, attempts, updated_at = (_meta.get_field(name) for name in ("status", "attempts", "updated_at"))
    if not connection.features.can_return_rows_from_bulk_insert:  # no UPDATE ... RETURNING
        rows = Message.objects.select_for_update().filter(pk__in=ids, status="queued").exclude(
            due_at__gt=now).exclude(connectionrow.OPTED_OUT_Q)
        taken = list(rows.values_list("pk", flat=True))
        Message.objects.filter(pk__in=taken).update(
            status="sending", attempts=F("attempts") + 1, updated_at=now)
        return taken
    quote = connection.ops.quote_name
    may_send, may_send_params = connectionrow.may_send(connection)
    return _take_due(connection, ids, now,
                     f"{quote(status.column)} = %s, {quote(attempts.column)} = "
                     f"{quote(attempts.column)} + 1, {quote(updated_at.column)} = %s",
                     ["sending", updated_at.get_db_prep_save(now, connection)],
                     may_send, may_send_params)


def fail_opted_out(ids: Sequence[int], now: datetime) -> list[int]:
    """Store as failed (OPTED_OUT) those of these queued, due rows that the claim left
    because their number opted out; the ids it failed. For the rare claim that took fewer
    rows than it was given: the common path runs no statement of its own for opt-out."""
    if not ids:
        return []
    connection = _connection()
    if not connection.features.can_return_rows_from_bulk_insert:
        rows = Message.objects.filter(pk__in=ids, status="queued", direction=Direction.OUT).exclude(
            due_at__gt=now).filter(connectionrow.OPTED_OUT_Q)
        failed = list(rows.values_list("pk", flat=True))
        Message.objects.filter(pk__in=failed).update(status="failed", error=OPTED_OUT, updated_at=now)
        return failed
    quote = connection.ops.quote_name
    status, error, updated_at = (_meta.get_field(name) for name in ("status", "error", "updated_at"))
    may_send, may_send_params = connectionrow.may_send(connection)
    return _take_due(connection, ids, now,
                     f"{quote(status.column)} = %s, {quote(error.column)} = %s, "
                     f"{quote(updated_at.column)} = %s",
                     ["failed", OPTED_OUT, updated_at.get_db_prep_save(now, connection)],
                     f"NOT {may_send}", may_send_params)


def _take_due(connection: BaseDatabaseWrapper, ids: Sequence[int], now: datetime,
              assignments: str, values: list[Any], condition: str,
              condition_params: list[Any]) -> list[int]:
    """UPDATE those of these rows that are queued, due at `now` and meet `condition`; the
    ids it changed."""
    quote = connection.ops.quote_name
    status, due_at = quote(_meta.get_field("status").column), quote(_meta.get_field("due_at").column)
    when = _meta.get_field("due_at").get_db_prep_save(now, connection)
    changed = []
    chunks = list(_chunked(ids, IDS_PER_UPDATE))
    with _together(connection, len(chunks)), connection.cursor() as cursor:
        for chunk in chunks:
            cursor.execute(
                f"UPDATE {quote(_meta.db_table)} SET {assignments} "
                f"WHERE {quote(_meta.pk.column)} IN ({_marks(chunk)}) AND {status} = %s "
                f"AND ({due_at} IS NULL OR {due_at} <= %s) AND {condition} "
                f"RETURNING {quote(_meta.pk.column)}",
                [*values, *chunk, "queued", when, *condition_params])
            changed += [pk for (pk,) in cursor.fetchall()]
    return changed


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
