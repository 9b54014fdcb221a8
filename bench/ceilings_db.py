"""The database's own write rate: the ceiling under every figure that persists messages.

smsrouter stores every message before anything else happens, so no routing or sending
figure can beat the rate at which the database commits rows shaped like a message. This
measures that rate with the bare driver (no ORM, no Django), in the transaction shapes
smsrouter uses:

* one row per transaction: each message inserted and committed on its own;
* 500 rows per transaction: what `send()` to many recipients does (bulk_create);
* insert, then update the row, one transaction each: the least a message needs to be
  stored and then marked (routed, sent). bench/suite.py divides it by the messages one
  figure writes (2 for an echoed SMS: the SMS and its reply) to get that figure's ceiling.

SQLite runs as the benches run it (WAL, synchronous=NORMAL, a file in the same temporary
folder); PostgreSQL (127.0.0.1:5432, user postgres, database test) when reachable, in a
table of its own that is dropped afterwards.

Usage: .venv/bin/python bench/ceilings_db.py [-n 5000] [-r 3] [--json PATH] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import rows

BATCH = 500
POSTGRES = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"
COLUMNS = ("direction", "backend_id", "connection_id", "text", "segments", "status",
           "fields", "error", "attempts", "created_at", "updated_at")
#: A table shaped like smsrouter_message: the same columns, types and indexes.
TABLE = """
CREATE TABLE {name} (
    id {serial} PRIMARY KEY,
    direction varchar(3) NOT NULL,
    backend_id bigint NOT NULL,
    connection_id bigint NOT NULL,
    text text NOT NULL,
    segments smallint NOT NULL,
    status varchar(10) NOT NULL,
    external_id varchar(255) NULL,
    in_response_to_id bigint NULL,
    fields text NOT NULL,
    error text NOT NULL,
    attempts smallint NOT NULL,
    due_at {timestamp} NULL,
    created_at {timestamp} NOT NULL,
    updated_at {timestamp} NOT NULL
);
CREATE INDEX {name}_created ON {name} (created_at);
CREATE INDEX {name}_conversation ON {name} (connection_id, created_at);
CREATE INDEX {name}_status_age ON {name} (status, updated_at);
CREATE INDEX {name}_status_due ON {name} (status, due_at);
"""


class Database(Protocol):
    """What a measurement needs: run one statement, and bracket a transaction."""

    placeholder: str

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any: ...
    def executemany(self, sql: str, params: list[tuple[Any, ...]]) -> Any: ...
    def begin(self) -> None: ...
    def commit(self) -> None: ...


class Sqlite:
    placeholder = "?"

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.executescript(TABLE.format(name="message", serial="integer",
                                                   timestamp="datetime"))

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.connection.execute(sql, params)

    def executemany(self, sql: str, params: list[tuple[Any, ...]]) -> Any:
        return self.connection.executemany(sql, params)

    def begin(self) -> None:
        self.connection.execute("BEGIN IMMEDIATE")  # as the demo's transaction_mode

    def commit(self) -> None:
        self.connection.execute("COMMIT")


class Postgres:
    placeholder = "%s"

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.cursor = connection.cursor()
        self.cursor.execute(TABLE.format(name="message", serial="bigserial",
                                         timestamp="timestamptz"))

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        self.cursor.execute(sql, params)
        return self.cursor

    def executemany(self, sql: str, params: list[tuple[Any, ...]]) -> Any:
        self.cursor.executemany(sql, params)

    def begin(self) -> None:
        self.cursor.execute("BEGIN")

    def commit(self) -> None:
        self.cursor.execute("COMMIT")


def values(n: int) -> tuple[Any, ...]:
    now = datetime.now(timezone.utc)
    return ("out", 1, n % 50 + 1, f"Hello {n}, your appointment is on Tuesday at 9.", 1,
            "queued", "{}", "", 0, now, now)


def insert_sql(db: Database) -> str:
    marks = ", ".join([db.placeholder] * len(COLUMNS))
    return f"INSERT INTO message ({', '.join(COLUMNS)}) VALUES ({marks})"


def one_per_transaction(db: Database, count: int) -> float:
    sql = insert_sql(db)
    started = time.perf_counter()
    for n in range(count):
        db.begin()
        db.execute(sql, values(n))
        db.commit()
    return count / (time.perf_counter() - started)


def batched(db: Database, count: int) -> float:
    sql = insert_sql(db)
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        db.begin()
        db.executemany(sql, [values(n) for n in range(start, min(start + BATCH, count))])
        db.commit()
    return count / (time.perf_counter() - started)


def insert_then_update(db: Database, count: int) -> float:
    sql = insert_sql(db) + " RETURNING id"
    update = f"UPDATE message SET status = 'sent', updated_at = {db.placeholder} WHERE id = {db.placeholder}"
    started = time.perf_counter()
    for n in range(count):
        db.begin()
        (pk,) = db.execute(sql, values(n)).fetchone()
        db.commit()
        db.begin()
        db.execute(update, (datetime.now(timezone.utc), pk))
        db.commit()
    return count / (time.perf_counter() - started)


#: (shape, what it measures, unit, how, rows per run as a multiple of -n). The shape is
#: the key other rows name in `db_writes` to get their ceiling from bench/suite.py.
SHAPES: list[tuple[str, str, str, Callable[[Database, int], float], int]] = [
    ("single", "insert, 1 row per transaction", "rows/s", one_per_transaction, 1),
    ("batched", f"insert, {BATCH} rows per transaction", "rows/s", batched, 10),
    ("lifecycle", "insert + update, 1 transaction each", "msg/s", insert_then_update, 1),
]


@contextmanager
def sqlite_database() -> Iterator[Database]:
    with tempfile.TemporaryDirectory(prefix="smsrouter-ceiling-") as folder:
        db = Sqlite(Path(folder) / "ceiling.sqlite3")
        try:
            yield db
        finally:
            db.connection.close()


def postgres_reachable() -> bool:
    try:
        import psycopg
    except ImportError:
        return False
    try:
        psycopg.connect(POSTGRES).close()
    except psycopg.OperationalError:
        return False
    return True


@contextmanager
def postgres_database() -> Iterator[Database]:
    """A schema of its own in database `test`, dropped afterwards whatever happens."""
    import psycopg

    schema = f"bench_ceiling_{os.getpid()}"
    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
        try:
            connection.execute(f"SET search_path TO {schema}")
            yield Postgres(connection)
        finally:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


def measure(engine: str, label: str, database: Callable[[], Any], count: int,
            runs: int) -> list[dict[str, Any]]:
    found = []
    for shape, name, unit, how, scale in SHAPES:
        def once() -> float:
            with database() as db:
                return how(db, count * scale)

        found.append(rows.row("ceiling: database", f"{label}: {name}", rows.median_of(runs, once),
                              unit, engine=engine, shape=shape, count=count * scale))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000,
                        help=f"rows per run ({BATCH}-row batches: ten times as many)")
    parser.add_argument("--no-postgres", action="store_true", help="measure SQLite alone")
    rows.add_arguments(parser)
    args = parser.parse_args()
    found = measure("sqlite", f"SQLite {sqlite3.sqlite_version} WAL", sqlite_database, args.n,
                    args.runs)
    if not args.no_postgres and postgres_reachable():
        found += measure("postgresql", "PostgreSQL 127.0.0.1", postgres_database, args.n,
                         args.runs)
    elif not args.no_postgres:
        print("PostgreSQL at 127.0.0.1:5432 (user postgres, database test) is not reachable: "
              "its rows are left out.")
    rows.emit(found, args.json)


if __name__ == "__main__":
    main()
