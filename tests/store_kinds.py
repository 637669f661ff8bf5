"""Opening a real store of each kind for an integration test: memory, SQLite on a file in the
test's folder, PostgreSQL on the test's own fresh database (tests/postgres_harness.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from skipline.store import open_store
from skipline.store.base import Store

ALL_STORE_KINDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


async def opened_store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """The body of a parametrised `store` fixture: the store of kind `request.param`, open
    for the test and closed after it."""
    if request.param == "sqlite":
        url = "sqlite:///" + str(request.getfixturevalue("tmp_path") / "store.db")
    elif request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = "memory://"
    store = open_store(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
