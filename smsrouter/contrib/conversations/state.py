"""Session rows: found, locked, opened, touched and closed.

Row work only; what a conversation asks and accepts is smsrouter.contrib.conversations
.definition's, and what an answer does is .sessions'. Every change happens on a row
locked for the caller's transaction (SELECT ... FOR UPDATE on PostgreSQL; SQLite writes
one at a time anyway): two answers from one number, routed at once by two processes, are
taken one after the other, the second seeing the step the first moved to. In Celery mode
the lock lasts as long as the worker's claim transaction, so the session moves with the
message's outcome or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import connections, router

from smsrouter.contrib.conversations.models import Session, SessionStatus

if TYPE_CHECKING:
    from smsrouter.models import Connection


def active(connection: Connection) -> Session | None:
    """The connection's active session, locked until the caller's transaction ends."""
    return (Session.objects.select_for_update()
            .filter(connection_id=connection.pk, status=SessionStatus.ACTIVE).first())


def _active_sql(quote: Callable[[str], str]) -> str:
    meta = Session._meta
    table, connection, status = (quote(name) for name in (
        meta.db_table, meta.get_field("connection").column, meta.get_field("status").column))
    return f"SELECT 1 FROM {table} WHERE {connection} = %s AND {status} = %s LIMIT 1"


def has_active(connection: Connection) -> bool:
    """Whether the connection has an active session: a lookup in the one-active-session
    index, the one query a message that is no answer costs.

    Not a flag on the cached Connection: a session that another process started (a
    Celery worker, `Survey.start()` in a shell) would go unseen by this process's cache,
    and its answers would reach the keyword handlers. Every message asks, so the SQL is
    written once here rather than compiled by the ORM each time (about 30 us against
    600 on SQLite, measured in a loop).
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
    return session


def close(session: Session, status: str, now: datetime) -> None:
    """End the session where it stands: `closed_at_step` says where people quit."""
    session.status, session.closed_at_step, session.closed_at = status, session.step, now
    session.updated_at, session.remind_at = now, None
    session.save()
