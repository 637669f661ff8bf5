"""LISTEN/NOTIFY wake-ups: an idle worker-side store starts an order committed through another
store (another process, in production) within 50 ms, and a lost listening connection is
replaced by itself."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from skipline.store.postgres import PostgresStore
from skipline.testing import make_new_order

pytestmark = pytest.mark.postgres

TRIALS = 40
TARGET = 0.050
"""Seconds from the commit of an order to an idle worker's claim of it."""


@pytest.fixture
async def api_and_worker(postgres_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    api, worker = PostgresStore(postgres_url), PostgresStore(postgres_url)
    await api.open()
    await worker.open()
    try:
        yield api, worker
    finally:
        await worker.close()
        await api.close()


async def idle_worker_claims(worker: PostgresStore) -> float:
    """What a worker does when idle: sleep in wait_for_work, then claim. Returns the
    monotonic time of the claim."""
    while True:
        await worker.wait_for_work(5.0)
        if await worker.claim("w", 1, 30.0):
            return time.monotonic()


async def pickup_delays(api: PostgresStore, worker: PostgresStore) -> tuple[float, float]:
    """Seconds from a submission's commit (submit returned), and from the submit call, to the
    idle worker's claim of that order."""
    await worker.wait_for_work(0.01)
    claimed = asyncio.create_task(idle_worker_claims(worker))
    await asyncio.sleep(0.03)
    submitted = time.monotonic()
    await api.submit(make_new_order())
    committed = time.monotonic()
    claimed_at = await asyncio.wait_for(claimed, 5.0)
    return max(0.0, claimed_at - committed), claimed_at - submitted


async def test_an_idle_worker_starts_a_committed_order_within_50_ms(
    api_and_worker: tuple[PostgresStore, PostgresStore],
) -> None:
    api, worker = api_and_worker

    measured = [await pickup_delays(api, worker) for _ in range(TRIALS)]

    after_commit = summary(sorted(delay for delay, _ in measured))
    after_submit = summary(sorted(total for _, total in measured))
    print(
        f"\nidle worker, {TRIALS} orders: commit -> claimed {after_commit}; "
        f"submit called -> claimed {after_submit}"
    )
    assert statistics.median(delay for delay, _ in measured) < TARGET
    assert sorted(delay for delay, _ in measured)[int(0.95 * TRIALS) - 1] < TARGET


def summary(values: list[float]) -> str:
    p95 = values[int(0.95 * len(values)) - 1]
    return (
        f"median {statistics.median(values) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
        f"max {values[-1] * 1000:.1f} ms"
    )


async def listener_pids(url: str) -> set[int]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'skipline-listener'"
        )
    finally:
        await connection.close()
    return {row["pid"] for row in rows}


async def test_a_lost_listening_connection_is_replaced(
    api_and_worker: tuple[PostgresStore, PostgresStore], postgres_url: str,
) -> None:
    api, worker = api_and_worker
    before = await listener_pids(postgres_url)
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", list(before),
        )
    finally:
        await connection.close()

    for _ in range(100):
        after = await listener_pids(postgres_url)
        if len(after - before) == 2:
            break
        await asyncio.sleep(0.05)

    assert len(before) == 2 and len(after - before) == 2, (before, after)
    delay, _ = await pickup_delays(api, worker)
    assert delay < 0.5


async def woken_by(store: PostgresStore, event: Callable[[], Awaitable[object]]) -> float:
    """Seconds from `event()` until a pending wait_for_work(10) returns."""
    await store.wait_for_work(0.01)
    waiter = asyncio.create_task(store.wait_for_work(10.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    started = time.monotonic()
    await event()
    await asyncio.wait_for(waiter, 2.0)
    return time.monotonic() - started


async def test_a_retry_and_a_rescue_wake_a_waiting_worker(
    api_and_worker: tuple[PostgresStore, PostgresStore],
) -> None:
    api, worker = api_and_worker
    await api.submit(make_new_order())
    (lease,) = await api.claim("w", 1, 30.0)

    retried = await woken_by(worker, lambda: api.fail(lease.order.id, lease.token, "x", 0.0))

    (lease,) = await api.claim("w", 1, 0.05)
    await asyncio.sleep(0.1)
    rescued = await woken_by(worker, lambda: api.rescue_expired(3))
    assert retried < 0.5 and rescued < 0.5


async def test_statements_that_queue_nothing_wake_nobody(
    api_and_worker: tuple[PostgresStore, PostgresStore],
) -> None:
    api, worker = api_and_worker
    await api.submit(make_new_order())
    (lease,) = await api.claim("w", 1, 30.0)
    await worker.wait_for_work(0.2)

    waiter = asyncio.create_task(worker.wait_for_work(0.6))
    await api.fail(lease.order.id, lease.token, "for good", None)
    await api.release([("no-such-order", "token")])
    await api.rescue_expired(3)
    await api.complete(lease.order.id, lease.token, None)
    started = time.monotonic()
    await waiter

    assert time.monotonic() - started > 0.4, "woken although nothing was queued"


# --- waiting for a finish (wait_final) across stores -----------------------------------------
async def test_completions_through_one_store_wake_the_waiters_of_another(
    api_and_worker: tuple[PostgresStore, PostgresStore],
) -> None:
    """400 orders completed in one batch: more ids than one notification holds (150)."""
    api, worker = api_and_worker
    orders = [(await api.submit(make_new_order()))[0] for _ in range(400)]
    waiters = [asyncio.create_task(api.wait_final(order.id, 20.0)) for order in orders]
    leases = []
    while claimed := await worker.claim("w", 200, 30.0):
        leases += claimed
    await asyncio.sleep(0.2)
    assert not any(waiter.done() for waiter in waiters)

    started = time.monotonic()
    await asyncio.gather(*(worker.complete(lease.order.id, lease.token, None)
                           for lease in leases))
    answered = await asyncio.wait_for(asyncio.gather(*waiters), 5.0)

    assert time.monotonic() - started < 2.0
    assert {order.status.value for order in answered if order is not None} == {"succeeded"}
    assert len(answered) == 400


async def test_a_finish_missed_while_the_listener_was_down_is_seen_after_it_reconnects(
    api_and_worker: tuple[PostgresStore, PostgresStore], postgres_url: str,
) -> None:
    api, _ = api_and_worker
    order, _ = await api.submit(make_new_order())
    waiter = asyncio.create_task(api.wait_final(order.id, 20.0))
    await asyncio.sleep(0.1)
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid",
            list(await listener_pids(postgres_url)),
        )
        await connection.execute("UPDATE orders SET status = 'cancelled', finished_at = now()"
                                 " WHERE id = $1", order.id)  # no notification at all
    finally:
        await connection.close()
    started = time.monotonic()

    answered = await asyncio.wait_for(waiter, 10.0)

    assert answered is not None and answered.status.value == "cancelled"
    assert time.monotonic() - started < 5.0, "the waiter slept until its own deadline"
