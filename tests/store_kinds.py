"""Every store kind the tests run against, in one place: the contract suite, the integration
tests and the property tests take their kinds and URLs from here. Memory is in-process; SQLite
is a file in the test's folder; PostgreSQL is the test's own fresh database
(tests/postgres_harness.py), and its tests carry the `postgres` mark."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from skipline.store import open_store
from skipline.store.base import Store

MEMORY, SQLITE, POSTGRES = "memory", "sqlite", "postgres"
STORE_KINDS = (MEMORY, SQLITE, POSTGRES)
DURABLE_KINDS = frozenset({SQLITE, POSTGRES})
"""The kinds whose orders survive closing the store and opening it again."""
KIND_MARKS: dict[str, tuple[Any, ...]] = {POSTGRES: (pytest.mark.postgres,)}


def kind_params(kinds: Sequence[str] = STORE_KINDS) -> list[Any]:
    """`params=` for a fixture over `kinds`, each with the marks its kind needs."""
    return [pytest.param(kind, marks=KIND_MARKS.get(kind, ())) for kind in kinds]


ALL_STORE_KINDS = kind_params()


def store_url(kind: str, folder: Path, postgres_url: str = "", filename: str = "store.db") -> str:
    """The --db URL of a store of `kind`: SQLite's file is `filename` in `folder`, PostgreSQL's
    database is `postgres_url`."""
    if kind == MEMORY:
        return "memory://"
    if kind == SQLITE:
        return f"sqlite:///{folder / filename}"
    if kind == POSTGRES and postgres_url:
        return postgres_url
    raise ValueError(f"no URL for a store of kind {kind!r}")


def url_for(request: pytest.FixtureRequest, filename: str = "store.db") -> str:
    """The URL of a store of the kind `request.param`, in the test's own folder or database."""
    kind = request.param
    if kind == SQLITE:
        return store_url(kind, request.getfixturevalue("tmp_path"), filename=filename)
    if kind == POSTGRES:
        return store_url(kind, Path(), request.getfixturevalue("postgres_url"))
    return store_url(kind, Path())


async def opened_store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """The body of a parametrised `store` fixture: the store of kind `request.param`, open
    for the test and closed after it."""
    store = open_store(url_for(request))
    await store.open()
    try:
        yield store
    finally:
        await store.close()
