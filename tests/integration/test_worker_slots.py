"""A slot is the handler's, not the bookkeeping's: a finished handler frees its slot while its
outcome is being recorded, at most `slots` outcomes may wait to be recorded, and with SQLite
the claim that refills the freed slots shares one transaction with their completions."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skipline.clock import SystemClock
from skipline.config import Settings
from skipline.domain.models import JSON, NewOrder, Order, Status
from skipline.runtime import Workers
from skipline.store.base import Store
from skipline.store.sqlite import SqliteStore
from tests.store_kinds import MEMORY, SQLITE, kind_params, opened_store


class SlowToRecord:
    """A store whose `complete` waits until `recording` is set; everything else passes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.recording = asyncio.Event()

    async def complete(self, order_id: str, token: str, result: JSON) -> bool:
        await self.recording.wait()
        return await self.store.complete(order_id, token, result)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture(params=kind_params([MEMORY, SQLITE]))
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    async for opened in opened_store(request):
        yield opened


def settings(workers: int) -> Settings:
    return Settings(db="memory://", workers=workers, lease_seconds=5.0, drain_timeout=1.0)


async def submit(store: Store, name: str) -> Order:
    order, _ = await store.submit(NewOrder(
        id=str(uuid.uuid4()), tier="regular", priority=1, payload={"name": name},
    ))
    return order


async def status_of(store: Store, order: Order) -> Status:
    found = await store.get(order.id)
    assert found is not None
    return found.status


async def until(check: Any, what: str) -> None:
    deadline = time.monotonic() + 5.0
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_a_finished_handler_frees_its_slot_while_its_outcome_is_recorded(
    store: Store,
) -> None:
    slow = SlowToRecord(store)
    started: list[str] = []

    async def note(order: Order) -> JSON:
        started.append(order.payload["name"])
        return None

    first, second = await submit(store, "first"), await submit(store, "second")
    workers = Workers(slow, settings(workers=1), note)  # type: ignore[arg-type]
    pool = workers.pool
    await workers.start()
    try:
        await until(lambda: _true(started == ["first", "second"]), "the second order to start")
        assert await status_of(store, first) is Status.RUNNING  # not recorded yet
        assert (pool.running, pool.held) == (0, 2)
        slow.recording.set()
        for order in (first, second):
            await until(lambda o=order: _is(store, o, Status.SUCCEEDED), "success")
    finally:
        slow.recording.set()
        await workers.drain(1.0)


async def test_at_most_slots_outcomes_wait_to_be_recorded(store: Store) -> None:
    slow = SlowToRecord(store)
    orders = [await submit(store, f"o{n}") for n in range(4)]

    async def instant(order: Order) -> JSON:
        return None

    workers = Workers(slow, settings(workers=2), instant)  # type: ignore[arg-type]
    pool = workers.pool
    await workers.start()
    try:
        await until(lambda: _true(pool.held == 4), "four outcomes waiting")
        more = [await submit(store, f"late{n}") for n in range(2)]
        await asyncio.sleep(0.2)
        assert pool.held == 4 and pool.running == 0
        for order in more:
            assert await status_of(store, order) is Status.QUEUED  # claims held back
        slow.recording.set()
        for order in [*orders, *more]:
            await until(lambda o=order: _is(store, o, Status.SUCCEEDED), "success")
    finally:
        slow.recording.set()
        await workers.drain(1.0)


async def test_the_refilling_claim_shares_a_transaction_with_the_completions(
    tmp_path: Path,
) -> None:
    store = SqliteStore(str(tmp_path / "w.db"), SystemClock())
    await store.open()
    try:
        orders = [await submit(store, f"o{n}") for n in range(400)]

        async def instant(order: Order) -> JSON:
            return None

        before = store.committed_batches
        workers = Workers(store, settings(workers=50), instant)
        await workers.start()
        await until(lambda: _is(store, orders[-1], Status.SUCCEEDED), "the last order")
        await workers.drain(1.0)
        # 8 claims of 50 and 8 rounds of 50 completions: about 9 transactions when each claim
        # rides with the completions that freed its slots, 16 or more when they do not.
        assert store.committed_batches - before <= 12
        for order in orders:
            assert await status_of(store, order) is Status.SUCCEEDED
    finally:
        await store.close()


async def _true(value: bool) -> bool:
    return value


async def _is(store: Store, order: Order, status: Status) -> bool:
    return await status_of(store, order) is status
