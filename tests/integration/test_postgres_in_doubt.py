"""Writes whose commit is in doubt, on a throwaway cluster of the tests' own.

Each test makes the doubt happen deterministically: the `orders` table is locked from a side
connection, so the store's statement (its Bind, Execute and Sync already sent in one write)
waits inside the server; the network between store and server is then cut; the lock is
released, so the server commits (or the test keeps it from doing so); and the reply, or the
connection, is lost. The store must answer with what the database holds, never "unavailable"
for a write that was committed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from skipline.domain.errors import StoreUnavailable
from skipline.domain.models import Lease, NewOrder, Order, Status
from skipline.store.postgres import NOT_STORED, OPERATION_TIMEOUT, PostgresStore
from skipline.store.postgres_doubt import IN_DOUBT_SECONDS, OUTCOME_UNKNOWN
from skipline.testing import make_new_order
from tests.postgres_harness import CuttableProxy, ThrowawayCluster

pytestmark = pytest.mark.postgres

SETTLED = OPERATION_TIMEOUT + 3.0
"""Seconds within which a write in doubt is answered once the database can be reached."""


@pytest.fixture
async def proxy(postgres_fault_cluster: ThrowawayCluster) -> AsyncIterator[CuttableProxy]:
    cuttable = CuttableProxy(postgres_fault_cluster)
    await cuttable.start()
    try:
        yield cuttable
    finally:
        await cuttable.stop()


@asynccontextmanager
async def proxied_store(
    proxy: CuttableProxy, url: str, in_doubt_seconds: float = IN_DOUBT_SECONDS
) -> AsyncIterator[PostgresStore]:
    """A store with one pooled connection, through the proxy, its statements prepared (so a
    write goes out as one Bind/Execute/Sync)."""
    store = PostgresStore(proxy.url(url), pool_size=1, in_doubt_seconds=in_doubt_seconds)
    await store.open()
    try:
        warm_up = await store.submit(make_new_order())
        (lease,) = await store.claim("warm-up", 1, 30.0)
        assert warm_up[0].id == lease.order.id
        assert await store.complete(lease.order.id, lease.token, None)
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def admin(url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the database (not through the proxy)."""
    connection = await asyncpg.connect(url, timeout=5)
    try:
        yield connection
    finally:
        await connection.close()


@asynccontextmanager
async def orders_locked(url: str) -> AsyncIterator[asyncpg.Connection]:
    """`orders` locked against writes (reads still pass) until the connection commits."""
    async with admin(url) as locker:
        await locker.execute("BEGIN; LOCK TABLE orders IN SHARE MODE")
        yield locker
        if locker.is_in_transaction():
            await locker.execute("COMMIT")


async def until(condition: str, url: str, *args: object, seconds: float = 5.0) -> None:
    """Poll a boolean query on a direct connection until it is true."""
    async with admin(url) as connection:
        deadline = time.monotonic() + seconds
        while not await connection.fetchval(condition, *args):
            assert time.monotonic() < deadline, f"timed out waiting for: {condition}"
            await asyncio.sleep(0.02)


async def store_write_waits_on_the_lock(url: str) -> None:
    await until(
        "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'skipline' AND wait_event_type = 'Lock'", url,
    )


async def stored_order_count(url: str, order_id: str) -> int:
    async with admin(url) as connection:
        query = "SELECT count(*) FROM orders WHERE id = $1"
        count: int = await connection.fetchval(query, order_id)
        return count


async def submit_committed_while_cut(
    store: PostgresStore, proxy: CuttableProxy, url: str, new: NewOrder
) -> asyncio.Task[tuple[Order, bool]]:
    """Start submitting `new`; return once the server has committed it with the network cut,
    so that the store will never see the reply."""
    async with orders_locked(url) as locker:
        submitting = asyncio.create_task(store.submit(new))
        await store_write_waits_on_the_lock(url)
        proxy.cut()
        await locker.execute("COMMIT")
    await until("SELECT count(*) = 1 FROM orders WHERE id = $1", url, new.id)
    return submitting


@pytest.mark.parametrize("loss", ["reset", "silence"])
async def test_a_submission_committed_as_its_reply_is_lost_returns_the_stored_order(
    postgres_fault_url: str, proxy: CuttableProxy, loss: str,
) -> None:
    """reset: the connection breaks right after the commit; silence: the reply never comes,
    the store gives up waiting, and the network comes back a little later."""
    async with proxied_store(proxy, postgres_fault_url) as store:
        new = make_new_order(payload={"n": 1})
        submitting = await submit_committed_while_cut(store, proxy, postgres_fault_url, new)
        if loss == "silence":
            await asyncio.sleep(OPERATION_TIMEOUT + 0.5)
            assert not submitting.done()
        started = time.monotonic()
        proxy.heal()

        order, created = await asyncio.wait_for(submitting, SETTLED)

        assert time.monotonic() - started < SETTLED
        assert created is True
        assert (order.id, order.status, order.payload) == (new.id, Status.QUEUED, {"n": 1})
        assert await stored_order_count(postgres_fault_url, new.id) == 1


async def test_a_submission_committed_as_the_database_crashes_is_found_after_restart(
    postgres_fault_url: str, proxy: CuttableProxy, postgres_fault_cluster: ThrowawayCluster,
) -> None:
    async with proxied_store(proxy, postgres_fault_url) as store:
        new = make_new_order()
        submitting = await submit_committed_while_cut(store, proxy, postgres_fault_url, new)
        await asyncio.to_thread(postgres_fault_cluster.stop, "immediate")
        await asyncio.to_thread(postgres_fault_cluster.start)
        proxy.heal()

        order, created = await asyncio.wait_for(submitting, SETTLED)

        assert (order.id, created) == (new.id, True)
        assert await stored_order_count(postgres_fault_url, new.id) == 1


async def test_an_uncommitted_submission_whose_connection_died_is_refused_and_never_stored(
    postgres_fault_url: str, proxy: CuttableProxy,
) -> None:
    """The server process that ran it is still alive, waiting on the lock: were it not ended
    before the look-up, "not stored" would be a lie as soon as the lock went away. Meanwhile,
    other submissions are answered at once rather than held behind the doubt."""
    async with proxied_store(proxy, postgres_fault_url) as store:
        new = make_new_order()
        async with orders_locked(postgres_fault_url):
            submitting = asyncio.create_task(store.submit(new))
            await store_write_waits_on_the_lock(postgres_fault_url)
            proxy.cut()
            await asyncio.sleep(OPERATION_TIMEOUT + 0.2)
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.submit(make_new_order())
            assert time.monotonic() - started < OPERATION_TIMEOUT + 0.5
            assert not submitting.done(), "the doubtful submission was answered blindly"
            proxy.heal()
            with pytest.raises(StoreUnavailable) as refused:
                await asyncio.wait_for(submitting, SETTLED)
            assert refused.value.detail == NOT_STORED
        await asyncio.sleep(0.5)  # what the ended process would have committed by now
        assert await stored_order_count(postgres_fault_url, new.id) == 0


async def test_a_submission_whose_outcome_stays_unknown_is_unavailable_and_safe_to_retry(
    postgres_fault_url: str, proxy: CuttableProxy,
) -> None:
    async with proxied_store(proxy, postgres_fault_url, in_doubt_seconds=1.0) as store:
        new = make_new_order(owner="alice", idempotency_key="k1")
        async with orders_locked(postgres_fault_url):
            submitting = asyncio.create_task(store.submit(new))
            await store_write_waits_on_the_lock(postgres_fault_url)
            proxy.cut()
            with pytest.raises(StoreUnavailable) as unknown:
                await asyncio.wait_for(submitting, OPERATION_TIMEOUT + 2.0)
            assert unknown.value.detail == OUTCOME_UNKNOWN
        # The lock is gone and the server, still holding the statement, commits it.
        await until("SELECT count(*) = 1 FROM orders WHERE id = $1", postgres_fault_url, new.id)
        proxy.heal()

        retry = make_new_order(owner="alice", idempotency_key="k1")
        order, created = await asyncio.wait_for(store.submit(retry), SETTLED)

        assert (order.id, created) == (new.id, False)


async def claimed(store: PostgresStore) -> Lease:
    await store.submit(make_new_order())
    (lease,) = await store.claim("w", 1, 60.0)
    return lease


async def test_a_completion_committed_as_its_reply_is_lost_is_reported_done(
    postgres_fault_url: str, proxy: CuttableProxy,
) -> None:
    async with proxied_store(proxy, postgres_fault_url) as store:
        lease = await claimed(store)
        async with orders_locked(postgres_fault_url) as locker:
            completing = asyncio.create_task(store.complete(lease.order.id, lease.token, "r"))
            await store_write_waits_on_the_lock(postgres_fault_url)
            proxy.cut()
            await locker.execute("COMMIT")
        await until("SELECT status = 'succeeded' FROM orders WHERE id = $1",
                    postgres_fault_url, lease.order.id)
        proxy.heal()

        assert await asyncio.wait_for(completing, SETTLED) is True
        assert await store.complete(lease.order.id, lease.token, "again") is False
        done = await store.get(lease.order.id)
        assert done is not None
        assert (done.status, done.result, done.attempts) == (Status.SUCCEEDED, "r", 1)


async def test_an_uncommitted_completion_whose_connection_died_can_be_retried(
    postgres_fault_url: str, proxy: CuttableProxy,
) -> None:
    async with proxied_store(proxy, postgres_fault_url) as store:
        lease = await claimed(store)
        async with orders_locked(postgres_fault_url):
            completing = asyncio.create_task(store.complete(lease.order.id, lease.token, "r"))
            await store_write_waits_on_the_lock(postgres_fault_url)
            proxy.cut()
            proxy.heal()
            with pytest.raises(StoreUnavailable):
                await asyncio.wait_for(completing, SETTLED)

        assert await store.complete(lease.order.id, lease.token, "r") is True
        done = await store.get(lease.order.id)
        assert done is not None
        assert (done.status, done.result) == (Status.SUCCEEDED, "r")
