"""Database faults, on a throwaway cluster of the tests' own (never the shared server): while
PostgreSQL is stopped hard or the network is cut, every store call raises StoreUnavailable
within about two seconds (never hangs, never leaks an asyncpg error) — but a write whose
statement may have reached the server, whose outcome the store then tries to learn for up to
its `in_doubt_seconds` first (test_postgres_in_doubt); once the database is back the store
recovers by itself within five seconds, wake-ups included."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from skipline.domain.errors import StoreUnavailable
from skipline.domain.models import ApiKey, Lease, OrderQuery
from skipline.domain.workers import WorkerSignIn
from skipline.store.postgres import PostgresStore
from skipline.testing import make_new_order
from tests.postgres_harness import CuttableProxy, ThrowawayCluster

pytestmark = pytest.mark.postgres

PROMPT = 2.5
"""Seconds within which a call must give up while the database is unreachable."""
RECOVERY = 5.0
"""Seconds within which the store must work again once the database is back."""
IN_DOUBT = 1.0
"""The cut-network store's `in_doubt_seconds` (shortened to keep the test quick)."""
WRITES = ("submit", "complete")
"""The calls whose commit can be in doubt, when they went out on a connection that was open."""

Call = Callable[[], Awaitable[object]]


@pytest.fixture
async def store(postgres_fault_url: str) -> AsyncIterator[PostgresStore]:
    opened = PostgresStore(postgres_fault_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def every_call(store: PostgresStore, lease: Lease) -> dict[str, Call]:
    """One call of every Store method (but wait_for_work, which never raises)."""
    held = [(lease.order.id, lease.token)]
    key = ApiKey("k", "vip", False, "hash", 1_700_000_000.0)
    return {
        "submit": lambda: store.submit(make_new_order()),
        "get": lambda: store.get(lease.order.id),
        "list_orders": lambda: store.list_orders(OrderQuery()),
        "cancel": lambda: store.cancel(lease.order.id),
        "claim": lambda: store.claim("w", 1, 30.0),
        "heartbeat": lambda: store.heartbeat(held, 30.0),
        "complete": lambda: store.complete(lease.order.id, lease.token, None),
        "fail": lambda: store.fail(lease.order.id, lease.token, "boom", 1.0),
        "release": lambda: store.release(held),
        "rescue_expired": lambda: store.rescue_expired(3),
        "stats": lambda: store.stats(),
        "queued_counts": lambda: store.queued_counts(),
        "next_due": lambda: store.next_due(["default"]),
        "ping": lambda: store.ping(),
        "add_key": lambda: store.add_key(key),
        "find_key": lambda: store.find_key("hash"),
        "list_keys": lambda: store.list_keys(),
        "revoke_key": lambda: store.revoke_key("k"),
        "register_worker": lambda: store.register_worker(
            WorkerSignIn("w", "h", 1, ("default",), 1), 30.0),
        "beat_worker": lambda: store.beat_worker("w", 1, 30.0),
        "remove_worker": lambda: store.remove_worker("w"),
        "list_workers": lambda: store.list_workers(),
        "prune_workers": lambda: store.prune_workers(),
    }


async def seconds_to_unavailable(call: Call) -> float:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(call(), 10.0)
    return time.monotonic() - started


async def assert_every_call_is_unavailable(
    store: PostgresStore, lease: Lease, in_doubt: float = 0.0
) -> None:
    """All at once, as a busy process would make them; writes may take `in_doubt` longer."""
    calls = every_call(store, lease)
    elapsed = await asyncio.gather(*(seconds_to_unavailable(call) for call in calls.values()))
    slow = {
        name: round(t, 2) for name, t in zip(calls, elapsed, strict=True)
        if t > PROMPT + (in_doubt if name in WRITES else 0.0)
    }
    assert slow == {}, f"calls slower than {PROMPT} s to report the outage"


async def seconds_to_recover(store: PostgresStore) -> float:
    """Seconds until a submission and a claim succeed again (polling every 50 ms)."""
    started = time.monotonic()
    while time.monotonic() - started < 3 * RECOVERY:
        try:
            await store.submit(make_new_order())
            await store.claim("w", 1, 30.0)
        except StoreUnavailable:
            await asyncio.sleep(0.05)
        else:
            return time.monotonic() - started
    raise AssertionError("the store did not recover")


async def claimed_lease(store: PostgresStore) -> Lease:
    await store.submit(make_new_order())
    (lease,) = await store.claim("w", 1, 30.0)
    return lease


async def seconds_until_woken_by_notification(store: PostgresStore) -> float:
    """Seconds until a waiting worker stays asleep (no fallback poll, no leftover wake-up)
    and is then woken by a new order: the listener reconnects on its own schedule (up to a
    second between tries), so this gives up only at RECOVERY."""
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY:
        await store.wait_for_work(0.01)
        waiter = asyncio.create_task(store.wait_for_work(10.0))
        await asyncio.sleep(0.4)
        if not waiter.done():
            await store.submit(make_new_order())
            await asyncio.wait_for(waiter, 0.5)
            return time.monotonic() - started
    return time.monotonic() - started


async def test_a_stopped_database_is_reported_promptly_and_recovered_from(
    store: PostgresStore, postgres_fault_cluster: ThrowawayCluster,
) -> None:
    lease = await claimed_lease(store)
    await asyncio.to_thread(postgres_fault_cluster.stop, "immediate")

    await assert_every_call_is_unavailable(store, lease)
    started = time.monotonic()
    await store.wait_for_work(3.0)
    assert time.monotonic() - started < 1.0, "an outage must not silence the fallback poll"

    await asyncio.to_thread(postgres_fault_cluster.start)
    assert await seconds_to_recover(store) < RECOVERY
    assert await seconds_until_woken_by_notification(store) < RECOVERY


async def test_a_store_recovers_from_repeated_hard_stops(
    store: PostgresStore, postgres_fault_cluster: ThrowawayCluster,
) -> None:
    for _ in range(3):
        await asyncio.to_thread(postgres_fault_cluster.stop, "immediate")
        with pytest.raises(StoreUnavailable):
            await store.submit(make_new_order())
        await asyncio.to_thread(postgres_fault_cluster.start)
        assert await seconds_to_recover(store) < RECOVERY


async def test_opening_while_the_database_is_down_fails_promptly(
    postgres_fault_url: str, postgres_fault_cluster: ThrowawayCluster,
) -> None:
    await asyncio.to_thread(postgres_fault_cluster.stop, "immediate")
    store = PostgresStore(postgres_fault_url)

    elapsed = await seconds_to_unavailable(store.open)

    assert elapsed < PROMPT
    await store.close()


async def test_a_cut_network_is_reported_promptly_and_recovered_from(
    postgres_fault_url: str, postgres_fault_cluster: ThrowawayCluster,
) -> None:
    proxy = CuttableProxy(postgres_fault_cluster)
    await proxy.start()
    store = PostgresStore(proxy.url(postgres_fault_url), in_doubt_seconds=IN_DOUBT)
    try:
        await store.open()
        lease = await claimed_lease(store)
        proxy.cut()

        await assert_every_call_is_unavailable(store, lease, IN_DOUBT)

        proxy.heal()
        assert await seconds_to_recover(store) < RECOVERY
    finally:
        await store.close()
        await proxy.stop()


async def test_opening_through_a_cut_network_fails_promptly(
    postgres_fault_url: str, postgres_fault_cluster: ThrowawayCluster,
) -> None:
    proxy = CuttableProxy(postgres_fault_cluster)
    await proxy.start()
    proxy.cut()
    store = PostgresStore(proxy.url(postgres_fault_url))
    try:
        assert await seconds_to_unavailable(store.open) < PROMPT
    finally:
        await store.close()
        await proxy.stop()
