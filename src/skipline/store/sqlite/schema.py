"""Opening SQLite connections the way the store needs them, and applying its migrations.

Connection settings (PRAGMAs) and transaction control live here as Python constants; every
query over the data lives in sql/queries.sql.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from skipline.domain.models import Durability
from skipline.store.migrate import Migration, pending

BUSY_TIMEOUT_SECONDS = 5.0
"""How long the writer waits for another process's write lock before giving up."""

READER_BUSY_TIMEOUT_SECONDS = 1.0
"""Readers are in WAL mode and almost never wait; bound it since they run on the event loop."""

CACHE_KIB = 32_768

WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
"""After a checkpoint the WAL is truncated to this, so one burst does not keep a huge file."""

WAL_CHECKPOINT_PAGES = 10_000
"""Checkpoint once the WAL holds this many pages (40 MiB at 4 KiB, under the size limit) rather
than SQLite's 1,000: order ids are random, so nearly every submission dirties its own page of
the id index, and a page rewritten several times between two checkpoints is copied back to the
database only once. Durability does not depend on it (every COMMIT syncs the WAL)."""

SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}


def connect_writer(
    path: str, durability: Durability, migrations: list[Migration],
    queries: dict[str, str], now: float,
) -> sqlite3.Connection:
    """The writer's connection: WAL, synchronous as asked, schema migrated."""
    connection = _connect(path, BUSY_TIMEOUT_SECONDS)
    try:
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal" and path != ":memory:":
            raise sqlite3.OperationalError(f"could not switch {path} to WAL (got {mode!r})")
        connection.execute(f"PRAGMA synchronous = {SYNCHRONOUS[durability]}")
        connection.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
        connection.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        apply_migrations(connection, migrations, queries, now)
    except BaseException:
        connection.close()
        raise
    return connection


def connect_reader(path: str) -> sqlite3.Connection:
    """A read-only connection; under WAL it never blocks the writer nor waits for it."""
    connection = _connect(path, READER_BUSY_TIMEOUT_SECONDS)
    connection.execute("PRAGMA query_only = ON")
    return connection


def data_version(connection: sqlite3.Connection) -> int | None:
    """A number that moves whenever another connection commits to the file (read from the WAL
    index, not the database). None when it cannot be read: callers treat that as a change, so
    the next real statement meets and reports the error."""
    try:
        row = connection.execute("PRAGMA data_version").fetchone()
    except sqlite3.Error:
        return None
    return int(row[0])


def _connect(path: str, busy_timeout: float) -> sqlite3.Connection:
    # isolation_level=None: the sqlite3 module never opens transactions behind our back.
    connection = sqlite3.connect(
        path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    return connection


def apply_migrations(
    connection: sqlite3.Connection, migrations: list[Migration], queries: dict[str, str],
    now: float,
) -> list[int]:
    """Apply, in one transaction, the migrations above the recorded version; returns the
    versions applied. The write lock is taken first, so two processes opening the same file
    at once do not both apply a migration."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(queries["migrations_table"])
        version = connection.execute(queries["migrations_version"]).fetchone()[0]
        applied = []
        for migration in pending(migrations, version):
            for statement in split_statements(migration.sql):
                connection.execute(statement)
            connection.execute(
                queries["migrations_record"],
                {"version": migration.version, "name": migration.name, "applied_at": now},
            )
            applied.append(migration.version)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return applied


def split_statements(script: str) -> Iterator[str]:
    """The complete SQL statements of a script, one at a time (triggers kept whole), so a
    migration runs inside our transaction rather than through executescript's own COMMIT."""
    start = 0
    for end, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[start : end + 1]):
            statement = script[start : end + 1].strip()
            if _has_code(statement):
                yield statement
            start = end + 1
    if _has_code(script[start:]):
        raise ValueError(f"unterminated SQL statement: {script[start:].strip()[:80]!r}")


def _has_code(text: str) -> bool:
    """True unless `text` is only blanks, comments and semicolons."""
    for line in text.splitlines():
        code = line.split("--", 1)[0].strip().strip(";").strip()
        if code:
            return True
    return False
