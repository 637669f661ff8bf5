"""Writes whose commit is in doubt, on a throwaway cluster of the tests' own.

Each test makes the doubt happen deterministically: the `orders` table is locked from a side
connection, so the store's statement (its Bind, Execute and Sync already sent in one write)
waits inside the server; the network between store and server is then cut; the lock is
released, so the server commits (or the test keeps it from doing so); and the reply, or the
connection, is lost. The store must answer with what the database holds, never "unavailable"
for a write that was committed; and a submission's callers must be answered within the 2 s an
outage allows: when the outcome cannot be learnt by then, they are told it is unknown, with the
order's id (OutcomeUnknown; over HTTP, a 503 problem), and the database tells later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from skipline.config import Settings
from skipline.domain.errors import OutcomeUnknown, StoreUnavailable
from skipline.domain.models import Lease, NewOrder, Order, Status
from skipline.domain.workers import WorkerSignIn
from skipline.service import OrderService
from skipline.store.postgres.doubt import IN_DOUBT_SECONDS, ORDER_OUTCOME_UNKNOWN
from skipline.store.postgres.store import NOT_STORED, OPERATION_TIMEOUT, PostgresStore
from skipline.testing import make_new_order
from tests.integration.api_harness import Api, Reply, serving
from tests.postgres_harness import CuttableProxy, ThrowawayCluster

pytestmark = pytest.mark.postgres

SETTLED = OPERATION_TIMEOUT + 3.0
"""Seconds within which a write in doubt is answered once the database can be reached."""
ANSWERED = 2.0
"""Seconds within which a submission is answered while the database is down (the contract)."""
PROMPT = OPERATION_TIMEOUT + 0.5
"""Seconds within which a write that timed out is answered (as any other call that timed out)."""
STORE_LOG = "skipline.store.postgres"


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


async def answered(call: Awaitable[Any]) -> tuple[float, Any]:
    """Seconds until `call` returned or raised, and what it returned or raised."""
    started = time.monotonic()
    try:
        outcome = await call
    except Exception as error:  # the outcome under test, whatever it is
        outcome = error
    return time.monotonic() - started, outcome


async def logged(caplog: pytest.LogCaptureFixture, words: str, seconds: float = SETTLED) -> None:
    """Wait until the store has logged a message containing `words` (a late settlement)."""
    deadline = time.monotonic() + seconds
    while not any(words in record.getMessage() for record in caplog.records):
        assert time.monotonic() < deadline, f"never logged: {words!r}"
        await asyncio.sleep(0.05)


def assert_unknown(outcome: object, new: NewOrder) -> None:
    assert isinstance(outcome, OutcomeUnknown), outcome
    assert (outcome.order_id, outcome.detail) == (new.id, ORDER_OUTCOME_UNKNOWN)


async def test_a_submission_committed_as_its_connection_breaks_returns_the_stored_order(
    postgres_fault_url: str, proxy: CuttableProxy,
) -> None:
    """Settled in time: the connection breaks right after the commit, and the server can be
    asked at once, so the caller gets its order well within the bound."""
    async with proxied_store(proxy, postgres_fault_url) as store:
        new = make_new_order(payload={"n": 1})
        sent = time.monotonic()
        submitting = await submit_committed_while_cut(store, proxy, postgres_fault_url, new)
        proxy.heal()

        order, created = await asyncio.wait_for(submitting, SETTLED)

        assert time.monotonic() - sent < ANSWERED
        assert created is True
        assert (order.id, order.status, order.payload) == (new.id, Status.QUEUED, {"n": 1})
        assert await stored_order_count(postgres_fault_url, new.id) == 1


async def test_a_submission_whose_reply_never_comes_is_unknown_then_found(
    postgres_fault_url: str, proxy: CuttableProxy, caplog: pytest.LogCaptureFixture,
) -> None:
    """The reply is silently lost: the write times out and is answered at once as unknown
    (not held until the network is back); settling goes on, and finds the order once it is."""
    caplog.set_level(logging.WARNING, STORE_LOG)
    async with proxied_store(proxy, postgres_fault_url) as store:
        new = make_new_order(payload={"n": 1})
        sent = time.monotonic()
        submitting = await submit_committed_while_cut(store, proxy, postgres_fault_url, new)

        _, outcome = await answered(submitting)

        assert time.monotonic() - sent < PROMPT
        assert_unknown(outcome, new)
        proxy.heal()
        await logged(caplog, "submissions in doubt: 1 of 1 were stored")
        order = await store.get(new.id)
        assert order is not None and order.payload == {"n": 1}
        assert await stored_order_count(postgres_fault_url, new.id) == 1


async def test_a_submission_queued_behind_a_write_that_hangs_is_answered_within_the_bound(
    postgres_fault_url: str, proxy: CuttableProxy,
) -> None:
    """A call that arrives while a batch's write hangs (a silent network) first waits for that
    write; its answer time counts from its call, not from its own write, so it too is answered
    within the bound. (Found by the postgres_partition_api fault scenario: callers queued
    behind a write into a blackholed network were answered after 3.0 s.)"""
    async with proxied_store(proxy, postgres_fault_url) as store, \
            orders_locked(postgres_fault_url):
        first = asyncio.create_task(answered(store.submit(make_new_order())))
        await store_write_waits_on_the_lock(postgres_fault_url)
        proxy.cut()
        await asyncio.sleep(0.7)

        seconds, outcome = await answered(store.submit(make_new_order()))

        assert seconds < ANSWERED
        assert isinstance(outcome, StoreUnavailable), outcome  # unknown or not stored
        first_seconds, first_outcome = await first
        assert first_seconds < ANSWERED and isinstance(first_outcome, OutcomeUnknown)
        proxy.heal()


@asynccontextmanager
async def crashed_while_writing(
    store: PostgresStore, proxy: CuttableProxy, cluster: ThrowawayCluster, url: str,
    call: Awaitable[Any], *, committed: bool,
) -> AsyncIterator[asyncio.Task[tuple[float, Any]]]:
    """Start `call` (a submission), and crash the database (stop it hard) while its commit is
    in doubt: after the server committed it with the network cut (`committed`), or while it
    still waits on the lock. Yields the timed call; the database is back and the network whole
    on the way out."""
    locker = await asyncpg.connect(url, timeout=5)
    try:
        await locker.execute("BEGIN; LOCK TABLE orders IN SHARE MODE")
        before = await locker.fetchval("SELECT count(*) FROM orders")
        submitting = asyncio.create_task(answered(call))
        await store_write_waits_on_the_lock(url)
        proxy.cut()
        if committed:
            await locker.execute("COMMIT")
            await until("SELECT count(*) = $1 FROM orders", url, before + 1)
        await asyncio.to_thread(cluster.stop, "immediate")
    finally:
        locker.terminate()  # dead by now, or to be dropped anyway
    try:
        yield submitting
    finally:
        await asyncio.to_thread(cluster.start)
        proxy.heal()


@pytest.mark.parametrize("committed", [True, False], ids=["committed", "not-committed"])
async def test_a_submission_in_doubt_while_the_database_restarts_is_unknown_within_the_bound(
    postgres_fault_url: str, proxy: CuttableProxy, postgres_fault_cluster: ThrowawayCluster,
    caplog: pytest.LogCaptureFixture, committed: bool,
) -> None:
    """The database is down longer than the bound, so the outcome cannot be learnt in time:
    the caller is told it is unknown, with the order's id, within the bound; others are told
    about the outage at once, not held behind the doubt; settling goes on, and once the
    database is back the order is there exactly when it was committed."""
    caplog.set_level(logging.WARNING, STORE_LOG)
    async with proxied_store(proxy, postgres_fault_url) as store:
        new = make_new_order()
        async with crashed_while_writing(
            store, proxy, postgres_fault_cluster, postgres_fault_url, store.submit(new),
            committed=committed,
        ) as submitting:
            elapsed, outcome = await submitting
            assert elapsed < ANSWERED
            assert_unknown(outcome, new)
            other, refused = await answered(store.submit(make_new_order()))
            assert other < PROMPT
            assert isinstance(refused, StoreUnavailable)
            assert not isinstance(refused, OutcomeUnknown), "it never reached the server"
        await logged(caplog, f"submissions in doubt: {int(committed)} of 1 were stored")
        assert (await store.get(new.id) is not None) is committed


@pytest.mark.parametrize("committed", [True, False], ids=["committed", "not-committed"])
async def test_a_post_in_doubt_is_answered_503_unknown_with_its_order_within_two_seconds(
    postgres_fault_url: str, proxy: CuttableProxy, postgres_fault_cluster: ThrowawayCluster,
    committed: bool,
) -> None:
    """Over real HTTP: the 503 carries Retry-After, `"outcome": "unknown"`, the order's id
    and where to ask; once the database is back, GET tells the truth (200 or 404)."""
    async with proxied_store(proxy, postgres_fault_url) as store, serving(
        OrderService(store, Settings(db="postgresql://in-doubt-test"))
    ) as api:
        async with crashed_while_writing(
            store, proxy, postgres_fault_cluster, postgres_fault_url, api.submit(),
            committed=committed,
        ) as posting:
            elapsed, reply = await posting
            assert isinstance(reply, Reply), reply
            assert elapsed < ANSWERED
            problem = assert_unknown_problem(reply)
        order_id = problem["order_id"]
        assert await stored_order_count(postgres_fault_url, order_id) == int(committed)
        looked_up = await once_reconnected(api, problem["location"])
        assert looked_up.status == (200 if committed else 404), looked_up.body
        if committed:
            assert looked_up.json()["id"] == order_id


async def once_reconnected(api: Api, path: str) -> Reply:
    """GET `path`, again while the store is still reconnecting (503), as a client would."""
    deadline = time.monotonic() + SETTLED
    while (reply := await api.call("GET", path)).status == 503:
        assert time.monotonic() < deadline, reply.body
        await asyncio.sleep(0.1)
    return reply


def assert_unknown_problem(reply: Reply) -> dict[str, Any]:
    assert reply.status == 503, reply.body
    assert reply.content_type.startswith("application/problem+json")
    assert int(reply.headers["Retry-After"]) >= 1
    problem: dict[str, Any] = reply.json()
    assert problem["type"] == "urn:skipline:problem:outcome-unknown"
    assert (problem["status"], problem["outcome"]) == (503, "unknown")
    assert problem["location"] == f"/orders/{problem['order_id']}"
    assert "Idempotency-Key" in problem["detail"] and "Traceback" not in problem["detail"]
    return problem


async def test_an_uncommitted_submission_whose_connection_broke_is_refused_and_never_stored(
    postgres_fault_url: str, proxy: CuttableProxy,
) -> None:
    """Settled in time: the server process that ran it is still alive, waiting on the lock.
    Were it not ended before the look-up, "not stored" would be a lie as soon as the lock went
    away; it is ended, and the caller learns "not stored" (not "unknown") within the bound."""
    async with proxied_store(proxy, postgres_fault_url) as store:
        new = make_new_order()
        async with orders_locked(postgres_fault_url):
            submitting = asyncio.create_task(answered(store.submit(new)))
            await store_write_waits_on_the_lock(postgres_fault_url)
            proxy.cut()
            proxy.heal()
            elapsed, refused = await asyncio.wait_for(submitting, SETTLED)
            assert elapsed < ANSWERED
            assert isinstance(refused, StoreUnavailable)
            assert not isinstance(refused, OutcomeUnknown)
            assert refused.detail == NOT_STORED
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
            elapsed, unknown = await answered(asyncio.wait_for(submitting, SETTLED))
            assert elapsed < PROMPT
            assert_unknown(unknown, new)
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


async def skipline_backends(url: str) -> set[int]:
    """The server processes of the store's pooled connections (not its listener's)."""
    async with admin(url) as connection:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'skipline'")
        return {row["pid"] for row in rows}


async def test_a_write_slower_than_the_answer_time_is_answered_unknown_and_still_lands(
    postgres_fault_url: str, proxy: CuttableProxy, caplog: pytest.LogCaptureFixture,
) -> None:
    """A write that is slow, not lost (a slow network; here a lock held 1.8 s): its caller is
    answered "unknown" within the bound, and the write is not cut. It commits on the
    connection it started on, which stays in the pool: cutting a slow write dropped a healthy
    connection each time, and through a slow network the pool spent its time opening new ones
    (found by the postgres_slow_network fault scenario)."""
    caplog.set_level(logging.WARNING, STORE_LOG)
    async with proxied_store(proxy, postgres_fault_url) as store:
        before = await skipline_backends(postgres_fault_url)
        new = make_new_order(payload={"slow": True})
        async with orders_locked(postgres_fault_url) as locker:
            submitting = asyncio.create_task(answered(store.submit(new)))
            await store_write_waits_on_the_lock(postgres_fault_url)
            elapsed, outcome = await submitting
            assert elapsed < ANSWERED
            assert_unknown(outcome, new)
            await asyncio.sleep(max(0.0, 1.8 - elapsed))
            await locker.execute("COMMIT")

        await logged(caplog, "outlasted its callers' answer time (answered outcome unknown): "
                             "1 of 1 orders stored")
        assert await stored_order_count(postgres_fault_url, new.id) == 1
        order = await store.get(new.id)
        assert order is not None and order.payload == {"slow": True}
        assert await skipline_backends(postgres_fault_url) == before


async def test_lease_renewal_does_not_wait_for_a_busy_pool(
    postgres_fault_url: str, proxy: CuttableProxy,
) -> None:
    """Renewals have connections of their own: with every other pooled connection busy (here
    the one, waiting on a lock), a heartbeat still renews at once. Sharing the pool, it waited
    behind the other calls, and through a slow network a lease expired under its live worker
    (found by the postgres_slow_network fault scenario)."""
    async with proxied_store(proxy, postgres_fault_url) as store:
        lease = await claimed(store)
        async with admin(postgres_fault_url) as locker:
            await locker.execute("BEGIN; LOCK TABLE workers IN SHARE MODE")
            signing_in = asyncio.create_task(store.register_worker(
                WorkerSignIn("w", "host", 1, ("default",), 1), 30.0))
            await store_write_waits_on_the_lock(postgres_fault_url)

            seconds, held = await answered(
                store.heartbeat([(lease.order.id, lease.token)], 30.0))

            assert held == {lease.order.id}
            assert seconds < 1.0
            await locker.execute("COMMIT")
        await asyncio.wait_for(signing_in, SETTLED)
