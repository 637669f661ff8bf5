"""The fixtures the API tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skipline.clock import SystemClock
from skipline.store.postgres import PostgresStore
from skipline.store.sqlite import SqliteStore
from tests.integration.api_harness import STORE_KINDS, Api, running_api
from tests.integration.postgres_stores import OpenStore


@pytest.fixture(params=STORE_KINDS)
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    """A served API with default settings over each kind of store."""
    async with running_api(request.param, tmp_path) as running:
        yield running


@pytest.fixture
async def open_store(postgres_url: str) -> AsyncIterator[OpenStore]:
    """Opens stores on this test's database (one per simulated process); closes them all."""
    opened: list[PostgresStore] = []

    async def opener(**options: Any) -> PostgresStore:
        store = PostgresStore(postgres_url, **options)
        await store.open()
        opened.append(store)
        return store

    yield opener
    for store in opened:
        await store.close()


@pytest.fixture
async def sqlite_api_and_worker(
    tmp_path: Path,
) -> AsyncIterator[tuple[SqliteStore, SqliteStore]]:
    """Two SQLite stores on one file, as an API process and a worker process hold it."""
    path = str(tmp_path / "shared.db")
    api, worker = SqliteStore(path, SystemClock()), SqliteStore(path, SystemClock())
    await api.open()
    await worker.open()
    try:
        yield api, worker
    finally:
        await worker.close()
        await api.close()
