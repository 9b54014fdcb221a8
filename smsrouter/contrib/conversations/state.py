"""Session rows: found, locked, opened, touched and closed.

Row work only; what a conversation asks and accepts is smsrouter.contrib.conversations
.definition's, and what an answer does is .sessions'. Every change happens on a row
locked for the caller's transaction (SELECT ... FOR UPDATE on PostgreSQL; SQLite writes
one at a time anyway): two answers from one number, routed at once by two processes, are
taken one after the other, the second seeing the step the first moved to. In Celery mode
the lock lasts as long as the worker's claim transaction, so the session moves with the
message's outcome or not at all.

Opening and closing also set `Connection.in_session`, in the same transaction, by an
UPDATE of the row (not a save of a cached copy): the INSERT of each inbound message reads
it back (smsrouter.connectionrow), so the common message needs no query here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import connections, router, transaction
from django.db.models import Exists, OuterRef

from smsrouter import connectionrow
from smsrouter.contrib.conversations.models import Session, SessionStatus
from smsrouter.models import Connection

if TYPE_CHECKING:
    from smsrouter.messages import IncomingMessage


def active(connection: Connection) -> Session | None:
    """The connection's active session, locked until the caller's transaction ends; its
    `connection` is the one given, so that closing it updates that object."""
    session = (Session.objects.select_for_update()
               .filter(connection_id=connection.pk, status=SessionStatus.ACTIVE).first())
    if session is not None:
        session.connection = connection
    return session


def _active_sql(quote: Callable[[str], str]) -> str:
    meta = Session._meta
    table, connection, status = (quote(name) for name in (
        meta.db_table, meta.get_field("connection").column, meta.get_field("status").column))
    return f"SELECT 1 FROM {table} WHERE {connection} = %s AND {status} = %s LIMIT 1"


def may_have_active(msg: IncomingMessage) -> bool:
    """Whether the sender may have an active session: `connection.in_session` where the
    transaction that routes this message read it (its INSERT, or a worker's claim: no
    query), else `has_active()`.

    The flag is trusted only then: a session that another process started (a Celery
    worker, `Survey.start()` in a shell) is unknown to this process's cached Connection
    until an INSERT reads the row again, and its answers would reach the keyword handlers.
    A session opened by an earlier message of the same batch has set it in memory.
    """
    if connectionrow.connection_read(msg.record):
        return msg.connection.in_session
    return has_active(msg.connection)


def has_active(connection: Connection) -> bool:
    """Whether the connection has an active session: a lookup in the one-active-session
    index. Asked for every message whose INSERT did not read `in_session`, so the SQL is
    written once here rather than compiled by the ORM each time (about 30 us against 600
    on SQLite, measured in a loop).
    """
    database = connections[router.db_for_read(Session)]
    with database.cursor() as cursor:
        cursor.execute(_active_sql(database.ops.quote_name), [connection.pk, SessionStatus.ACTIVE.value])
        return cursor.fetchone() is not None


def touch(session: Session, now: datetime, expiry: timedelta, silence: timedelta | None) -> None:
    """The session was just heard from (or just asked): its clocks start again."""
    session.updated_at = now
    session.expires_at = now + expiry
    session.remind_at = now + silence if silence is not None else None


def open_session(connection: Connection, conversation: str, step: str, now: datetime,
                 expiry: timedelta, silence: timedelta | None) -> Session:
    session = Session(connection=connection, conversation=conversation, step=step, started_at=now)
    touch(session, now, expiry, silence)
    session.save()
    Connection.objects.filter(pk=connection.pk).update(in_session=True)
    connection.in_session = True
    return session


def close(session: Session, status: str, now: datetime) -> None:
    """End the session where it stands: `closed_at_step` says where people quit.

    The connection's `in_session` is cleared in the row once it has no active session.
    The connection object learns it once that commits: until then, a rollback would leave
    it saying "no session" of a number that has one, for the next message of a batch.
    """
    session.status, session.closed_at_step, session.closed_at = status, session.step, now
    session.updated_at, session.remind_at = now, None
    session.save()
    others = Session.objects.filter(connection_id=OuterRef("pk"), status=SessionStatus.ACTIVE)
    Connection.objects.filter(pk=session.connection_id).exclude(Exists(others)).update(in_session=False)
    if Session.connection.is_cached(session):
        connection = session.connection
        transaction.on_commit(lambda: setattr(connection, "in_session", False),
                              using=router.db_for_write(Connection))
