"""A virtual clock, and a quick reset, for a PostgreSQL test database.

The PostgreSQL store measures every time on the database clock (`now()` in its SQL), so a
FakeClock in Python cannot move it. For property tests we give one throwaway database its own
`now()`: a function in a `test_clock` schema that reads a one-row table, placed before
`pg_catalog` in the database's search_path (and after `public`, which stays the schema that
tables are created in and found in). New sessions of that database (the store's pool and
listener) then resolve `now()` to it, and the test moves time with `DatabaseClock.set()`.
Nothing outside that database is touched; it is dropped after the run.
"""

from __future__ import annotations

import asyncpg

SETUP = """
CREATE SCHEMA test_clock;
CREATE TABLE test_clock.clock (at timestamptz NOT NULL);
INSERT INTO test_clock.clock VALUES (now());
CREATE FUNCTION test_clock.now() RETURNS timestamptz LANGUAGE sql STABLE
    AS $$ SELECT at FROM test_clock.clock $$;
"""

EMPTY_TABLES = """
SELECT 'TRUNCATE ' || string_agg(format('%I.%I', schemaname, tablename), ', ')
       || ' RESTART IDENTITY'
FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'
"""
"""Every table the migrations made, except their own ledger, emptied in one statement."""


async def install_clock(url: str, database: str) -> None:
    """Give `database` the pinned now(); sessions opened afterwards use it."""
    connection = await asyncpg.connect(url, timeout=5)
    try:
        await connection.execute(SETUP)
        await connection.execute(
            f'ALTER DATABASE "{database}" SET search_path = public, test_clock, pg_catalog'
        )
    finally:
        await connection.close()


class DatabaseClock:
    """Moves the pinned now() of one database, and empties it between runs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: asyncpg.Connection | None = None

    async def start(self, epoch_seconds: float) -> None:
        """Connect, empty the orders and keys of the previous run, and set the time."""
        self._connection = await asyncpg.connect(self.url, timeout=5)
        await self._connection.execute(await self._connection.fetchval(EMPTY_TABLES))
        await self.set(epoch_seconds)

    async def set(self, epoch_seconds: float) -> None:
        assert self._connection is not None, "start() first"
        await self._connection.execute(
            "UPDATE test_clock.clock SET at = to_timestamp($1::float8)", epoch_seconds,
        )

    async def read(self) -> float:
        """The database's `now()` as a store session sees it, in epoch seconds."""
        assert self._connection is not None, "start() first"
        return float(await self._connection.fetchval("SELECT extract(epoch FROM now())"))

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
