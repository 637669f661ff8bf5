"""WorkerPool.hurry, the fast exit's way into a drain: a drain with a long grace period ends as
soon as it is called, the running handlers are cancelled and their leases released (queued
again at once, same attempt count), and hurry before the drain makes the drain that short."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from skipline.config import Settings
from skipline.domain.models import DEFAULT_TIERS, JSON, NewOrder, Order, Status
from skipline.store.base import Store
from skipline.worker import WorkerPool
from tests.store_kinds import MEMORY, SQLITE, kind_params, opened_store

LONG = 30.0


@pytest.fixture(params=kind_params((MEMORY, SQLITE)))
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    async for opened in opened_store(request):
        yield opened


async def sleeper(order: Order) -> JSON:
    await asyncio.sleep(LONG)
    return None


async def running_pool(store: Store) -> tuple[WorkerPool, list[Order]]:
    orders = []
    for _ in range(2):
        new = NewOrder(id=str(uuid.uuid4()), tier="regular",
                       priority=DEFAULT_TIERS["regular"].priority, payload=None)
        orders.append((await store.submit(new))[0])
    settings = Settings(db="memory://", workers=2, lease_seconds=60.0, drain_timeout=60.0)
    pool = WorkerPool(store, settings, sleeper)
    await pool.start()
    deadline = time.monotonic() + 5
    while pool.running < 2:
        assert time.monotonic() < deadline, "the pool never ran both orders"
        await asyncio.sleep(0.02)
    return pool, orders


async def assert_released(store: Store, orders: list[Order]) -> None:
    for order in orders:
        now = await store.get(order.id)
        assert now is not None and now.status is Status.QUEUED and now.attempts == 1


async def test_hurry_cuts_a_long_drain_short_and_releases_the_leases(store: Store) -> None:
    pool, orders = await running_pool(store)
    began = time.monotonic()
    drain = asyncio.create_task(pool.drain(60.0))
    await asyncio.sleep(0.1)
    assert not drain.done()
    pool.hurry()
    await asyncio.wait_for(drain, timeout=5)
    assert time.monotonic() - began < 3
    assert pool.running == 0
    await assert_released(store, orders)


async def test_hurry_before_the_drain_makes_it_short(store: Store) -> None:
    pool, orders = await running_pool(store)
    pool.hurry()
    began = time.monotonic()
    await pool.drain(60.0)
    assert time.monotonic() - began < 3
    await assert_released(store, orders)
