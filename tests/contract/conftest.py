"""The contract suite runs unchanged against every store kind (tests/store_kinds.py).

A kind is opened through a `StoreFactory`: `await factory.open()` gives an opened store; calling
it again after `close()` REOPENS the same underlying database (for durable kinds), which is how
the durability tests check that nothing is lost. To add a kind, add it to tests/store_kinds.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from skipline.store.base import Store
from tests.store_kinds import ALL_STORE_KINDS, DURABLE_KINDS, url_for

from .helpers import StoreFactory


@pytest.fixture(params=ALL_STORE_KINDS)
async def store_factory(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    kind = request.param
    factory = StoreFactory(kind, url_for(request, "contract.db"), durable=kind in DURABLE_KINDS)
    try:
        yield factory
    finally:
        await factory.close_all()


@pytest.fixture
async def store(store_factory: StoreFactory) -> Store:
    """An opened, empty store of the kind under test."""
    return await store_factory.open()
