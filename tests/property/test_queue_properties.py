"""The scheduling and safety invariants, proven by random workloads over every real store.

Each TestCase runs `QueueMachine` (tests/property/queue_machine.py) against one backend:
the memory store always, SQLite on a temporary file once its store exists.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

from skipline.store import open_store
from skipline.store.base import Store
from tests.property.queue_machine import PROPERTY_SETTINGS, QueueMachine

HAVE_SQLITE_STORE = importlib.util.find_spec("skipline.store.sqlite") is not None


class MemoryQueueMachine(QueueMachine):
    async def open_store(self) -> Store:
        return open_store("memory://", clock=self.clock)


class SqliteQueueMachine(QueueMachine):
    """SQLite on a fresh file per run, with the default (full) durability."""

    async def open_store(self) -> Store:
        self.directory = Path(tempfile.mkdtemp(prefix="skipline-property-"))
        return open_store(f"sqlite:///{self.directory / 'queue.db'}", clock=self.clock)

    async def close_store(self) -> None:
        try:
            await super().close_store()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


TestMemoryStoreProperties = PROPERTY_SETTINGS(MemoryQueueMachine).TestCase
TestSqliteStoreProperties = pytest.mark.skipif(
    not HAVE_SQLITE_STORE, reason="skipline.store.sqlite is not written yet"
)(settings(PROPERTY_SETTINGS, max_examples=100)(SqliteQueueMachine).TestCase)
