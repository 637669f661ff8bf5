"""The scheduling and safety invariants, proven by random workloads over every real store.

Each test runs `QueueMachine` (tests/property/queue_machine.py) against one backend: the
memory store, SQLite on a fresh temporary file per example, and PostgreSQL (one fresh
database per test from the harness's migrated template, emptied before each example, with its
`now()` pinned to the test's clock: see postgres_clock.py).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from skipline.store import open_store
from skipline.store.base import Store
from tests.postgres_harness import run_async
from tests.property.postgres_clock import DatabaseClock, install_clock
from tests.property.queue_machine import PROPERTY_SETTINGS, QueueMachine
from tests.store_kinds import MEMORY, POSTGRES, SQLITE, store_url


class MemoryQueueMachine(QueueMachine):
    async def open_store(self) -> Store:
        return open_store(store_url(MEMORY, Path()), clock=self.clock)


class SqliteQueueMachine(QueueMachine):
    """SQLite on a fresh file per run, with the default (full) durability."""

    async def open_store(self) -> Store:
        self.directory = Path(tempfile.mkdtemp(prefix="skipline-property-"))
        url = store_url(SQLITE, self.directory, filename="queue.db")
        return open_store(url, clock=self.clock)

    async def close_store(self) -> None:
        try:
            await super().close_store()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


class PostgresQueueMachine(QueueMachine):
    """PostgreSQL measures time with its own now(): a DatabaseClock follows the FakeClock.
    One database serves every run of a test; each run starts by emptying it."""

    url: ClassVar[str]

    async def open_store(self) -> Store:
        self.database_clock = DatabaseClock(self.url)
        await self.database_clock.start(self.clock.now())
        assert await self.database_clock.read() == self.clock.now(), "now() is not pinned"
        return open_store(store_url(POSTGRES, Path(), self.url), clock=self.clock)

    async def clock_moved(self) -> None:
        await self.database_clock.set(self.clock.now())

    async def close_store(self) -> None:
        try:
            await super().close_store()
        finally:
            await self.database_clock.close()


TestMemoryStoreProperties = PROPERTY_SETTINGS(MemoryQueueMachine).TestCase
TestSqliteStoreProperties = settings(PROPERTY_SETTINGS, max_examples=100)(
    SqliteQueueMachine
).TestCase


@pytest.mark.postgres
def test_postgres_store_properties(postgres_url: str) -> None:
    database = postgres_url.rsplit("/", 1)[1]
    run_async(lambda: install_clock(postgres_url, database))
    machine = type("PostgresQueueMachine", (PostgresQueueMachine,), {"url": postgres_url})
    run_state_machine_as_test(machine, settings=settings(PROPERTY_SETTINGS, max_examples=40))
