"""Suspects run alone: an order rescued at least once (it was running when a worker died) is
started only when its pool holds no other order, and nothing is claimed while it runs; the
orders claimed with it run first, further suspects are released and come back one at a time.
Real stores (memory, SQLite, PostgreSQL) and real leases; the handler records which other
handlers were running whenever one starts."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from skipline.config import Settings
from skipline.domain.models import JSON, NewOrder, Order, Status
from skipline.runtime import Workers
from skipline.store.base import Store
from skipline.worker import WorkerPool
from tests.store_kinds import ALL_STORE_KINDS, opened_store


@pytest.fixture(params=ALL_STORE_KINDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    async for opened in opened_store(request):
        yield opened


@pytest.fixture
async def pools() -> AsyncIterator[list[Workers]]:
    """Pools a test starts; each is drained when the test ends."""
    started: list[Workers] = []
    yield started
    for workers in started:
        await workers.drain(1.0)


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        db="memory://", workers=4, lease_seconds=5.0, drain_timeout=1.0, max_rescues=3,
    )
    values.update(overrides)
    return Settings(**values)


class Recorder:
    """A handler that sleeps the order's duration and remembers, for every start, which other
    orders' handlers were running at that moment."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.starts: list[tuple[str, frozenset[str]]] = []
        self.ended: list[str] = []

    async def __call__(self, order: Order) -> JSON:
        name = str(order.payload["name"])
        self.starts.append((name, frozenset(self.running)))
        self.running.add(name)
        try:
            await asyncio.sleep(order.duration)
        finally:
            self.running.discard(name)
            self.ended.append(name)
        return name

    def beside(self, name: str) -> set[str]:
        """Orders whose handler ran at the same time as `name`'s (any run of it)."""
        found = {other for started, others in self.starts if started == name for other in others}
        found |= {started for started, others in self.starts if name in others}
        return found


async def submit(store: Store, name: str, duration: float = 0.05) -> Order:
    order, created = await store.submit(NewOrder(
        id=str(uuid.uuid4()), tier="regular", priority=1, payload={"name": name},
        duration=duration,
    ))
    assert created
    return order


async def suspects(store: Store, names: list[str], duration: float = 0.05) -> list[Order]:
    """Submit orders and make them suspects the way a death does: one worker claims them all,
    never renews their leases, and the reaper rescues them (`rescues` 1)."""
    orders = [await submit(store, name, duration) for name in names]
    leases = await store.claim("died", len(orders), 0.05)
    assert {lease.order.id for lease in leases} == {order.id for order in orders}
    await asyncio.sleep(0.15)
    assert await store.rescue_expired(3) == len(orders)
    rescued = [await store.get(order.id) for order in orders]
    assert all(o is not None and o.status is Status.QUEUED and o.rescues == 1 for o in rescued)
    return [o for o in rescued if o is not None]


async def suspect(store: Store, name: str, duration: float = 0.05) -> Order:
    (rescued,) = await suspects(store, [name], duration)
    return rescued


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def all_succeed(store: Store, orders: list[Order]) -> list[Order]:
    async def done() -> bool:
        found = [await store.get(order.id) for order in orders]
        return all(o is not None and o.status is Status.SUCCEEDED for o in found)

    await eventually(done, "every order to succeed")
    return [o for o in [await store.get(order.id) for order in orders] if o is not None]


async def start(pools: list[Workers], store: Store, handler: Recorder,
                config: Settings) -> WorkerPool:
    workers = Workers(store, config, handler)
    pools.append(workers)
    await workers.start()
    return workers.pool


async def test_a_suspect_runs_after_its_batch_and_alone(
    store: Store, pools: list[Workers]
) -> None:
    poisoned = await suspect(store, "suspect", duration=0.3)
    batch = [await submit(store, f"healthy-{i}", duration=0.2) for i in range(3)]
    handler = Recorder()
    await start(pools, store, handler, settings())
    await asyncio.sleep(0.05)  # the one claim has taken all four; the suspect waits for the rest
    later = [await submit(store, f"later-{i}") for i in range(3)]

    await all_succeed(store, [poisoned, *batch, *later])

    order_of_starts = [name for name, _ in handler.starts]
    assert order_of_starts[:3] == ["healthy-0", "healthy-1", "healthy-2"]
    assert order_of_starts[3] == "suspect"  # before the orders that came later: no overtaking
    assert handler.beside("suspect") == set()
    assert set(handler.beside("healthy-0")) == {"healthy-1", "healthy-2"}


async def test_a_later_claim_fills_every_slot_again(store: Store, pools: list[Workers]) -> None:
    """Isolation is for suspects only: once the suspect is over, the healthy orders behind it
    run side by side, four at a time, as before."""
    poisoned = await suspect(store, "suspect")
    healthy = [await submit(store, f"healthy-{i}", duration=0.3) for i in range(8)]
    handler = Recorder()
    await start(pools, store, handler, settings())

    await all_succeed(store, [poisoned, *healthy])

    assert handler.beside("suspect") == set()
    assert max(len(others) for _, others in handler.starts) == 3


async def test_suspects_claimed_together_run_one_at_a_time(
    store: Store, pools: list[Workers]
) -> None:
    rescued = await suspects(store, [f"suspect-{i}" for i in range(3)], duration=0.1)
    healthy = [await submit(store, f"healthy-{i}", duration=0.1) for i in range(2)]
    handler = Recorder()
    await start(pools, store, handler, settings())

    done = await all_succeed(store, [*rescued, *healthy])

    for i in range(3):
        assert handler.beside(f"suspect-{i}") == set(), handler.starts
    assert [name for name, _ in handler.starts].count("suspect-2") == 1
    by_name = {str(o.payload["name"]): o for o in done}
    assert all(by_name[f"suspect-{i}"].rescues == 1 for i in range(3))


async def test_heartbeats_keep_a_waiting_suspect_leased(
    store: Store, pools: list[Workers]
) -> None:
    """The suspect waits three leases for its batch to finish and is not rescued meanwhile."""
    poisoned = await suspect(store, "suspect")
    slow = await submit(store, "slow", duration=1.2)
    handler = Recorder()
    await start(pools, store, handler, settings(lease_seconds=0.4))

    done = await all_succeed(store, [poisoned, slow])

    assert [name for name, _ in handler.starts] == ["slow", "suspect"]
    assert [(o.attempts, o.rescues) for o in done] == [(2, 1), (1, 0)]


async def test_a_drain_releases_a_waiting_suspect_at_once(
    store: Store, pools: list[Workers]
) -> None:
    poisoned = await suspect(store, "suspect")
    await submit(store, "slow", duration=0.3)
    handler = Recorder()
    pool = await start(pools, store, handler, settings())
    await asyncio.sleep(0.1)
    assert (pool.running, pool.held) == (1, 2)

    await pool.drain(5.0)

    back = await store.get(poisoned.id)
    assert back is not None and back.status is Status.QUEUED
    assert handler.ended == ["slow"]
    assert pool.held == 0


async def test_without_heartbeats_rescued_orders_are_not_isolated(
    store: Store, pools: list[Workers]
) -> None:
    """With heartbeats off every long order is rescued under a live worker; the switch exists
    to show what leases prevent, so rescued orders run side by side as any other."""
    poisoned = await suspect(store, "suspect", duration=0.3)
    healthy = await submit(store, "healthy", duration=0.3)
    handler = Recorder()
    await start(pools, store, handler, settings(heartbeats=False))

    await all_succeed(store, [poisoned, healthy])

    assert handler.beside("suspect") == {"healthy"}
