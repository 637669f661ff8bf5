"""WorkerPool, LeaseReaper and Pruner against real stores (memory, SQLite, PostgreSQL):
priority order with no prefetch, slot limits, retries with backoff, timeouts, fenced completion
after a lost lease, graceful drain, heartbeats, rescue of expired leases, retention, and life
through a store outage."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from skipline.config import Settings
from skipline.domain.errors import StoreUnavailable
from skipline.domain.models import DEFAULT_TIERS, JSON, NewOrder, Order, Status
from skipline.handlers import Handler
from skipline.maintenance import LeaseReaper, Pruner
from skipline.metrics import Metrics
from skipline.runtime import Workers
from skipline.store.base import Store
from skipline.worker import WorkerPool
from tests.store_kinds import ALL_STORE_KINDS, opened_store

LONG = 30.0
"""A handler sleep no test waits for: only a cancel ends it."""


# --- fixtures and helpers -----------------------------------------------------------------------
@pytest.fixture(params=ALL_STORE_KINDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    async for opened in opened_store(request):
        yield opened


PoolMaker = Callable[..., Awaitable[WorkerPool]]


@pytest.fixture
async def make_pool() -> AsyncIterator[PoolMaker]:
    """Starts pools (each with the reaper and pruner a process runs beside it) and drains every
    one of them when the test ends."""
    started: list[Workers] = []

    async def make(store: Any, settings: Settings, handler: Handler, **kw: Any) -> WorkerPool:
        workers = Workers(store, settings, handler, **kw)
        started.append(workers)
        await workers.start()
        return workers.pool

    yield make
    for workers in started:
        await workers.drain(1.0)


def fast(**overrides: Any) -> Settings:
    """Settings scaled down so that a test takes a fraction of a second."""
    values: dict[str, Any] = dict(
        db="memory://", workers=1, lease_seconds=5.0, drain_timeout=1.0, order_timeout=10.0,
        max_attempts=3, max_rescues=3, backoff_base=0.05, backoff_max=1.0,
    )
    values.update(overrides)
    return Settings(**values)


async def submit(store: Store, name: str = "", tier: str = "regular", duration: float = 0.0
                 ) -> Order:
    """Accept an order whose payload is its `name` (strict priority: no max_wait)."""
    new = NewOrder(
        id=str(uuid.uuid4()), tier=tier, priority=DEFAULT_TIERS[tier].priority,
        payload={"name": name}, duration=duration,
    )
    order, created = await store.submit(new)
    assert created
    return order


def name_of(order: Order) -> str:
    return str(order.payload["name"])


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def reach(store: Store, order_id: str, status: Status, within: float = 5.0) -> Order:
    """Wait until the order has `status`; return it."""
    async def check() -> bool:
        order = await store.get(order_id)
        return order is not None and order.status is status

    await eventually(check, f"order {order_id} to be {status}", within)
    found = await store.get(order_id)
    assert found is not None
    return found


async def true_when(condition: Callable[[], bool]) -> bool:
    return condition()


class FlakyStore:
    """A real store behind a switchable network cut: methods named in `down` raise
    StoreUnavailable, as a store behind a broken connection would."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.down: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if name in self.down:
                raise StoreUnavailable(f"{name}: injected outage")
            return await method(*args, **kwargs)

        return call


# --- priority and slots -------------------------------------------------------------------------
async def test_one_slot_runs_vip_first_then_fifo(store: Store, make_pool: PoolMaker) -> None:
    started: list[str] = []

    async def record(order: Order) -> JSON:
        started.append(name_of(order))
        return None

    orders = [await submit(store, name, tier) for name, tier in [
        ("r1", "regular"), ("r2", "regular"), ("v1", "vip"), ("r3", "regular"), ("v2", "vip"),
    ]]
    await make_pool(store, fast(workers=1), record)

    for order in orders:
        await reach(store, order.id, Status.SUCCEEDED)
    assert started == ["v1", "v2", "r1", "r2", "r3"]


async def test_no_prefetch_a_vip_arriving_later_runs_next(
    store: Store, make_pool: PoolMaker
) -> None:
    started: list[str] = []
    gate = asyncio.Event()

    async def first_waits(order: Order) -> JSON:
        started.append(name_of(order))
        if name_of(order) == "first":
            await gate.wait()
        return None

    first = await submit(store, "first")
    await make_pool(store, fast(workers=1), first_waits)
    await reach(store, first.id, Status.RUNNING)
    waiting = [await submit(store, "r1"), await submit(store, "r2")]
    vip = await submit(store, "vip", "vip")
    await asyncio.sleep(0.2)
    for order in [*waiting, vip]:
        seen = await store.get(order.id)
        assert seen is not None and seen.status is Status.QUEUED, "a busy worker prefetched"

    gate.set()
    for order in [*waiting, vip]:
        await reach(store, order.id, Status.SUCCEEDED)
    assert started == ["first", "vip", "r1", "r2"]


async def test_never_more_than_the_slots_run_at_once(store: Store, make_pool: PoolMaker) -> None:
    running = 0
    peak = 0

    async def overlap(order: Order) -> JSON:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        return None

    orders = [await submit(store, f"o{i}") for i in range(12)]
    pool = await make_pool(store, fast(workers=3), overlap)
    samples: list[int] = []
    for order in orders:
        samples.append(pool.running)
        await reach(store, order.id, Status.SUCCEEDED)
    assert peak == 3
    assert max(samples) <= 3


async def test_a_finished_order_frees_its_slot_at_once(store: Store, make_pool: PoolMaker) -> None:
    async def instant(order: Order) -> JSON:
        return {"done": name_of(order)}

    orders = [await submit(store, f"o{i}") for i in range(20)]
    began = time.monotonic()
    await make_pool(store, fast(workers=1), instant)
    for order in orders:
        done = await reach(store, order.id, Status.SUCCEEDED, within=10.0)
        assert done.result == {"done": name_of(order)}
    # Sleeping for the 1 s poll between orders would take about 20 s.
    assert time.monotonic() - began < 5.0


async def test_an_idle_pool_wakes_when_an_order_arrives(
    store: Store, make_pool: PoolMaker
) -> None:
    started = asyncio.Event()

    async def note(order: Order) -> JSON:
        started.set()
        return None

    await make_pool(store, fast(), note)
    await asyncio.sleep(0.3)
    submitted = time.monotonic()
    await submit(store, "late")
    await asyncio.wait_for(started.wait(), 2.0)
    assert time.monotonic() - submitted < 0.6


# --- failures, retries and timeouts -------------------------------------------------------------
async def test_a_failing_handler_is_retried_with_backoff_then_dead_lettered(
    store: Store, make_pool: PoolMaker
) -> None:
    runs: list[float] = []

    async def explode(order: Order) -> JSON:
        runs.append(time.monotonic())
        raise ValueError(f"boom on attempt {order.attempts}")

    order = await submit(store, "bad")
    await make_pool(store, fast(max_attempts=3, backoff_base=0.1), explode)

    failed = await reach(store, order.id, Status.FAILED)
    assert failed.attempts == 3
    assert failed.error == "ValueError: boom on attempt 3"
    await asyncio.sleep(0.3)
    assert len(runs) == 3, "a dead-lettered order ran again"
    first_gap, second_gap = runs[1] - runs[0], runs[2] - runs[1]
    assert first_gap >= 0.1 * 0.9 - 0.01
    assert second_gap >= 0.2 * 0.9 - 0.01
    assert second_gap < 1.0, "the retry waited for the poll instead of its backoff"


async def test_a_handler_that_fails_once_succeeds_on_its_retry(
    store: Store, make_pool: PoolMaker
) -> None:
    async def flaky(order: Order) -> JSON:
        if order.attempts == 1:
            raise ConnectionResetError("peer went away")
        return {"attempt": order.attempts}

    order = await submit(store, "flaky")
    await make_pool(store, fast(), flaky)

    done = await reach(store, order.id, Status.SUCCEEDED)
    assert done.attempts == 2
    assert done.result == {"attempt": 2}


async def test_a_timeout_counts_as_a_failed_run(store: Store, make_pool: PoolMaker) -> None:
    cancelled = asyncio.Event()

    async def hang(order: Order) -> JSON:
        try:
            await asyncio.sleep(LONG)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return None

    order = await submit(store, "slow")
    began = time.monotonic()
    await make_pool(store, fast(order_timeout=0.2, max_attempts=1), hang)

    failed = await reach(store, order.id, Status.FAILED)
    assert time.monotonic() - began < 2.0
    assert cancelled.is_set()
    assert failed.error is not None and failed.error.startswith("TimeoutError")
    assert "0.2" in failed.error


async def test_a_result_that_is_not_json_is_a_failed_run(
    store: Store, make_pool: PoolMaker
) -> None:
    async def opaque(order: Order) -> JSON:
        return {"thing": object()}

    order = await submit(store, "opaque")
    await make_pool(store, fast(max_attempts=1), opaque)

    failed = await reach(store, order.id, Status.FAILED)
    assert failed.error is not None and "not JSON-serialisable" in failed.error
    assert "Traceback" not in failed.error


# --- leases -------------------------------------------------------------------------------------
async def steal(store: Store, flaky: FlakyStore, order_id: str) -> tuple[str, str]:
    """Cut the pool's heartbeats, let the lease expire and be rescued, then claim the order as
    another worker would. Returns the thief's (order id, token)."""
    flaky.down.add("heartbeat")
    await reach(store, order_id, Status.QUEUED, within=5.0)
    (lease,) = await store.claim("thief", 1, LONG)
    assert lease.order.id == order_id
    return lease.order.id, lease.token


async def test_a_worker_that_lost_its_lease_cannot_complete(
    store: Store, make_pool: PoolMaker, caplog: pytest.LogCaptureFixture
) -> None:
    gate = asyncio.Event()
    calls = 0

    async def slow(order: Order) -> JSON:
        nonlocal calls
        calls += 1
        await gate.wait()
        return {"by": "first worker"}

    flaky = FlakyStore(store)
    order = await submit(store, "contested")
    pool = await make_pool(flaky, fast(workers=1, lease_seconds=0.3), slow)
    await reach(store, order.id, Status.RUNNING)
    order_id, token = await steal(store, flaky, order.id)

    with caplog.at_level(logging.WARNING, logger="skipline.worker"):
        gate.set()
        await eventually(lambda: true_when(lambda: pool.held == 0), "the run to end")
    assert calls == 1
    still = await store.get(order_id)
    assert still is not None and still.status is Status.RUNNING and still.result is None
    assert any("lease lost" in record.getMessage() for record in caplog.records)
    assert await store.complete(order_id, token, {"by": "thief"})
    finished = await store.get(order_id)
    assert finished is not None and finished.result == {"by": "thief"}


async def test_a_lost_lease_cancels_the_running_handler(
    store: Store, make_pool: PoolMaker
) -> None:
    cancelled = asyncio.Event()

    async def hang_first(order: Order) -> JSON:
        if name_of(order) != "contested":
            return "ok"
        try:
            await asyncio.sleep(LONG)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return None

    flaky = FlakyStore(store)
    order = await submit(store, "contested")
    pool = await make_pool(flaky, fast(workers=1, lease_seconds=0.3), hang_first)
    await reach(store, order.id, Status.RUNNING)
    order_id, token = await steal(store, flaky, order.id)

    flaky.down.clear()
    await asyncio.wait_for(cancelled.wait(), 2.0)
    await eventually(lambda: true_when(lambda: pool.running == 0), "the slot to free")
    assert await store.complete(order_id, token, "thief")
    after = await submit(store, "after")
    assert (await reach(store, after.id, Status.SUCCEEDED)).result == "ok"


async def test_heartbeats_keep_a_long_order_from_running_twice(
    store: Store, make_pool: PoolMaker
) -> None:
    calls = 0

    async def long_run(order: Order) -> JSON:
        nonlocal calls
        calls += 1
        await asyncio.sleep(1.0)
        return "done"

    settings = fast(workers=1, lease_seconds=0.3)
    order = await submit(store, "long")
    await make_pool(store, settings, long_run)
    await reach(store, order.id, Status.RUNNING)
    await make_pool(store, settings, long_run)  # idle, would take the order if it were lost

    done = await reach(store, order.id, Status.SUCCEEDED)
    assert calls == 1
    assert (done.attempts, done.rescues) == (1, 0)


async def test_the_pool_rescues_what_a_crashed_worker_left(
    store: Store, make_pool: PoolMaker
) -> None:
    async def finish(order: Order) -> JSON:
        return "rescued"

    order = await submit(store, "orphan")
    (lease,) = await store.claim("crashed", 1, 0.2)
    await make_pool(store, fast(lease_seconds=0.4), finish)

    done = await reach(store, order.id, Status.SUCCEEDED)
    assert done.result == "rescued"
    assert (done.attempts, done.rescues) == (2, 1)
    assert not await store.complete(lease.order.id, lease.token, "too late")


# --- the lease reaper ---------------------------------------------------------------------------
async def test_the_reaper_rescues_an_expired_lease(store: Store) -> None:
    order = await submit(store, "orphan")
    await store.claim("crashed", 1, 0.2)
    reaper = LeaseReaper(store, fast(lease_seconds=0.2), interval=0.05)
    await reaper.start()
    try:
        rescued = await reach(store, order.id, Status.QUEUED, within=3.0)
    finally:
        await reaper.stop()
        await reaper.stop()
    assert rescued.rescues == 1
    assert rescued.seq == order.seq
    assert not reaper.started


async def test_the_reaper_rescues_at_start_and_fails_a_poison_order(store: Store) -> None:
    order = await submit(store, "poison")
    await store.claim("crashed", 1, 0.05)
    await asyncio.sleep(0.2)
    reaper = LeaseReaper(store, fast(max_rescues=0), interval=60.0)
    await reaper.start()
    try:
        failed = await store.get(order.id)
    finally:
        await reaper.stop()
    assert failed is not None and failed.status is Status.FAILED
    assert failed.error


async def test_the_reaper_lives_through_a_store_outage(store: Store) -> None:
    flaky = FlakyStore(store)
    flaky.down.add("rescue_expired")
    order = await submit(store, "orphan")
    await store.claim("crashed", 1, 0.1)
    reaper = LeaseReaper(flaky, fast(lease_seconds=0.1), interval=0.05)  # type: ignore[arg-type]
    await reaper.start()
    try:
        await asyncio.sleep(0.3)
        assert reaper.started
        flaky.down.clear()
        rescued = await reach(store, order.id, Status.QUEUED, within=5.0)
    finally:
        await reaper.stop()
    assert rescued.rescues == 1


# --- the pruner (retention) ---------------------------------------------------------------------
async def finished_order(store: Store, name: str) -> Order:
    """An order that has succeeded (the only one ready when this is called)."""
    order = await submit(store, name)
    (lease,) = await store.claim("w", 1, LONG)
    assert lease.order.id == order.id
    assert await store.complete(order.id, lease.token, "done")
    return order


async def gone(store: Store, order_id: str, within: float = 5.0) -> None:
    async def check() -> bool:
        return await store.get(order_id) is None

    await eventually(check, f"order {order_id} to be pruned", within)


async def test_the_pruner_deletes_finished_orders_in_batches_and_counts_them(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="skipline.maintenance")
    done = [await finished_order(store, f"done-{n}") for n in range(5)]
    queued = await submit(store, "waiting")
    metrics = Metrics()
    pruner = Pruner(store, fast(retention=0.2), interval=0.05, batch=2, pause=0.0,
                    metrics=metrics)
    await pruner.start()
    try:
        for order in done:
            await gone(store, order.id)
    finally:
        await pruner.stop()
        await pruner.stop()
    assert not pruner.started
    assert metrics.pruned == 5
    assert (await store.get(queued.id)) is not None
    assert any("pruned" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


async def test_one_pass_goes_on_while_batches_come_back_full(store: Store) -> None:
    done = [await finished_order(store, f"done-{n}") for n in range(5)]
    await asyncio.sleep(0.3)
    pruner = Pruner(store, fast(retention=0.2), batch=2, pause=0.0)

    assert await pruner.prune_once() == 5

    for order in done:
        assert await store.get(order.id) is None
    assert await pruner.prune_once() == 0


async def test_a_retention_of_zero_keeps_finished_orders_forever(store: Store) -> None:
    order = await finished_order(store, "kept")
    pruner = Pruner(store, fast(retention=0), interval=0.01)
    await pruner.start()
    try:
        assert not pruner.started
        await asyncio.sleep(0.1)
    finally:
        await pruner.stop()
    assert (await reach(store, order.id, Status.SUCCEEDED)).result == "done"


async def test_the_pruner_lives_through_a_store_outage(store: Store) -> None:
    flaky = FlakyStore(store)
    flaky.down.add("prune_finished")
    order = await finished_order(store, "old")
    pruner = Pruner(flaky, fast(retention=0.05), interval=0.05)
    await pruner.start()
    try:
        await asyncio.sleep(0.3)
        assert pruner.started
        assert await store.get(order.id) is not None
        flaky.down.clear()
        await gone(store, order.id)
    finally:
        await pruner.stop()


async def test_a_pool_prunes_what_it_finished(store: Store, make_pool: PoolMaker) -> None:
    async def nothing(order: Order) -> JSON:
        return None

    order = await submit(store, "short-lived")
    await make_pool(store, fast(retention=0.1), nothing)
    await reach(store, order.id, Status.SUCCEEDED)
    await gone(store, order.id)


# --- draining -----------------------------------------------------------------------------------
async def test_drain_finishes_short_orders_and_releases_long_ones(
    store: Store, make_pool: PoolMaker
) -> None:
    long_cancelled = asyncio.Event()

    async def short_or_long(order: Order) -> JSON:
        if name_of(order) == "short":
            await asyncio.sleep(0.2)
            return "short done"
        try:
            await asyncio.sleep(LONG)
        except asyncio.CancelledError:
            long_cancelled.set()
            raise
        return None

    short, long = await submit(store, "short"), await submit(store, "long")
    pool = await make_pool(store, fast(workers=2), short_or_long)
    await reach(store, long.id, Status.RUNNING)
    await reach(store, short.id, Status.RUNNING)

    began = time.monotonic()
    await pool.drain(0.6)
    took = time.monotonic() - began

    assert 0.55 <= took < 0.6 + 0.7
    assert long_cancelled.is_set()
    assert pool.running == 0
    assert (await reach(store, short.id, Status.SUCCEEDED)).result == "short done"
    released = await reach(store, long.id, Status.QUEUED)
    assert (released.seq, released.attempts, released.rescues) == (long.seq, 1, 0)


async def test_a_drained_pool_claims_nothing_more_and_drain_is_idempotent(
    store: Store, make_pool: PoolMaker
) -> None:
    async def finish(order: Order) -> JSON:
        return "ran"

    pool = await make_pool(store, fast(workers=2), finish)
    began = time.monotonic()
    await pool.drain(5.0)
    assert time.monotonic() - began < 0.5, "an idle pool waited for its drain timeout"
    order = await submit(store, "after drain")
    await asyncio.sleep(0.3)
    waiting = await store.get(order.id)
    assert waiting is not None and waiting.status is Status.QUEUED

    await pool.drain(5.0)
    await pool.stop()
    with pytest.raises(RuntimeError):
        await pool.start()
    successor = await make_pool(store, fast(workers=2), finish)
    assert (await reach(store, order.id, Status.SUCCEEDED)).result == "ran"
    await successor.stop()


async def test_released_orders_are_picked_up_again_at_once(
    store: Store, make_pool: PoolMaker
) -> None:
    async def forever(order: Order) -> JSON:
        await asyncio.sleep(LONG)
        return None

    async def quick(order: Order) -> JSON:
        return "second run"

    order = await submit(store, "moved")
    first = await make_pool(store, fast(lease_seconds=LONG), forever)
    await reach(store, order.id, Status.RUNNING)
    await first.drain(0.1)
    await make_pool(store, fast(lease_seconds=LONG), quick)

    done = await reach(store, order.id, Status.SUCCEEDED, within=2.0)
    assert (done.result, done.attempts, done.rescues) == ("second run", 2, 0)


# --- store outages ------------------------------------------------------------------------------
async def test_a_store_outage_does_not_kill_the_pool(store: Store, make_pool: PoolMaker) -> None:
    async def finish(order: Order) -> JSON:
        return "ran"

    flaky = FlakyStore(store)
    flaky.down.update({"claim", "next_due", "wait_for_work", "heartbeat", "rescue_expired"})
    await make_pool(flaky, fast(workers=2), finish)
    orders = [await submit(store, f"o{i}") for i in range(4)]
    await asyncio.sleep(0.8)
    for order in orders:
        seen = await store.get(order.id)
        assert seen is not None and seen.status is Status.QUEUED

    flaky.down.clear()
    for order in orders:
        assert (await reach(store, order.id, Status.SUCCEEDED, within=8.0)).attempts == 1


async def test_a_completion_during_an_outage_is_retried_not_rerun(
    store: Store, make_pool: PoolMaker
) -> None:
    gate = asyncio.Event()
    calls = 0

    async def gated(order: Order) -> JSON:
        nonlocal calls
        calls += 1
        await gate.wait()
        return "kept"

    flaky = FlakyStore(store)
    order = await submit(store, "important")
    await make_pool(flaky, fast(lease_seconds=0.6), gated)
    await reach(store, order.id, Status.RUNNING)
    flaky.down.add("complete")
    gate.set()
    await asyncio.sleep(0.8)
    pending = await store.get(order.id)
    assert pending is not None and pending.status is Status.RUNNING

    flaky.down.clear()
    done = await reach(store, order.id, Status.SUCCEEDED, within=8.0)
    assert (done.result, done.attempts, calls) == ("kept", 1, 1)
