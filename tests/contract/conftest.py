"""The contract suite runs unchanged against every store kind.

A kind is a `StoreFactory`: `await factory.open()` gives an opened store; calling it again after
`close()` REOPENS the same underlying database (for durable kinds), which is how the durability
tests check that nothing is lost. To add a kind, add a builder to `store_kinds()`: it receives
the pytest request, so it can ask for its own fixtures, e.g.

    def postgres_kind(request: pytest.FixtureRequest) -> StoreFactory:
        return StoreFactory("postgres", request.getfixturevalue("postgres_url"), durable=True)

and list it in `store_kinds()` with `marks=[pytest.mark.postgres]`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from skipline.store.base import Store

from .helpers import StoreFactory

KindBuilder = Callable[[pytest.FixtureRequest], StoreFactory]


@dataclass(frozen=True)
class StoreKind:
    name: str
    build: KindBuilder
    marks: tuple[Any, ...] = ()


def memory_kind(request: pytest.FixtureRequest) -> StoreFactory:
    return StoreFactory("memory", "memory://", durable=False)


def sqlite_kind(request: pytest.FixtureRequest) -> StoreFactory:
    tmp_path = request.getfixturevalue("tmp_path")
    return StoreFactory("sqlite", f"sqlite:///{tmp_path / 'contract.db'}", durable=True)


def postgres_kind(request: pytest.FixtureRequest) -> StoreFactory:
    return StoreFactory("postgres", request.getfixturevalue("postgres_url"), durable=True)


def store_kinds() -> list[StoreKind]:
    """Every store kind the contract suite runs against."""
    return [
        StoreKind("memory", memory_kind),
        StoreKind("sqlite", sqlite_kind),
        StoreKind("postgres", postgres_kind, marks=(pytest.mark.postgres,)),
    ]


STORE_KINDS = store_kinds()
KINDS_BY_NAME = {kind.name: kind for kind in STORE_KINDS}


@pytest.fixture(
    params=[pytest.param(kind.name, marks=kind.marks) for kind in STORE_KINDS],
)
async def store_factory(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    factory = KINDS_BY_NAME[request.param].build(request)
    try:
        yield factory
    finally:
        await factory.close_all()


@pytest.fixture
async def store(store_factory: StoreFactory) -> Store:
    """An opened, empty store of the kind under test."""
    return await store_factory.open()
