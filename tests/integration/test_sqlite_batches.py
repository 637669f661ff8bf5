"""How the SQLite writer batches: the writes of one loop iteration go to the thread together,
plain submissions share one INSERT statement (seqs handed back must be the stored ones), and a
failing write still fails alone when it shares a batch with such grouped writes."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from skipline.clock import SystemClock
from skipline.domain.errors import KeyExists, OrderNotCancellable
from skipline.domain.models import ApiKey, NewOrder, Order
from skipline.store.sqlite import SqliteStore
from skipline.store.sqlite import writer as sqlite_writer


def new_order(tier: str = "regular", key: str | None = None, owner: str = "") -> NewOrder:
    return NewOrder(id=str(uuid.uuid4()), tier=tier, priority=0 if tier == "vip" else 1,
                    payload={"tier": tier}, max_wait=60.0, idempotency_key=key, owner=owner)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(str(tmp_path / "store.db"), SystemClock())
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def stored(store: SqliteStore) -> dict[str, tuple[int, str, float, float | None]]:
    with sqlite3.connect(store.path) as other:
        return {row[0]: tuple(row[1:]) for row in other.execute(
            "SELECT id, seq, tier, created_at, overdue_at FROM orders"
        )}


def counters(store: SqliteStore) -> dict[tuple[str, str], int]:
    with sqlite3.connect(store.path) as other:
        return {(tier, status): n for tier, status, n in other.execute(
            "SELECT tier, status, n FROM order_counts WHERE n != 0"
        )}


def assert_matches_the_file(store: SqliteStore, orders: list[Order]) -> None:
    on_file = stored(store)
    for order in orders:
        assert on_file[order.id] == (order.seq, order.tier, order.created_at, order.overdue_at)


async def test_one_iteration_of_submits_is_one_batch_with_the_stored_seqs(
    store: SqliteStore,
) -> None:
    before = store.committed_batches
    news = [new_order(("vip", "regular")[n % 3 == 0]) for n in range(120)]
    results = await asyncio.gather(*(store.submit(new) for new in news))
    assert store.committed_batches - before == 1
    orders = [order for order, created in results if created]
    assert [order.id for order in orders] == [new.id for new in news]
    seqs = [order.seq for order in orders]
    assert seqs == list(range(seqs[0], seqs[0] + len(news)))  # acceptance order kept
    assert_matches_the_file(store, orders)
    assert counters(store) == {("vip", "queued"): 80, ("regular", "queued"): 40}


async def test_a_failing_write_fails_alone_beside_grouped_submits(store: SqliteStore) -> None:
    first, _ = await store.submit(new_order())
    await store.claim("w", 1, 30.0)
    await store.add_key(ApiKey("taken", "vip", False, "h1", 1.0))
    results = await asyncio.gather(
        store.submit(new_order()),
        store.cancel(first.id),  # running: OrderNotCancellable
        store.submit(new_order(key="k1", owner="acme")),
        store.add_key(ApiKey("taken", "regular", False, "h2", 2.0)),  # KeyExists
        store.submit(new_order("vip")),
        return_exceptions=True,
    )
    assert isinstance(results[1], OrderNotCancellable)
    assert isinstance(results[3], KeyExists)
    orders = []
    for result in (results[0], results[2], results[4]):
        assert isinstance(result, tuple)
        orders.append(result[0])
    assert_matches_the_file(store, orders)
    assert len({order.seq for order in orders}) == 3
    assert counters(store) == {
        ("regular", "running"): 1, ("regular", "queued"): 2, ("vip", "queued"): 1,
    }


async def test_more_writes_than_a_batch_holds_are_carried_to_the_next(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sqlite_writer, "MAX_BATCH", 7)
    before = store.committed_batches
    results = await asyncio.gather(*(store.submit(new_order()) for _ in range(30)))
    assert store.committed_batches - before == 5  # 7 + 7 + 7 + 7 + 2
    orders = [order for order, _ in results]
    assert sorted(order.seq for order in orders) == [order.seq for order in orders]
    assert_matches_the_file(store, orders)


async def test_writes_queued_before_close_are_committed(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "store.db"), SystemClock())
    await store.open()
    submits = [asyncio.ensure_future(store.submit(new_order())) for _ in range(10)]
    await asyncio.sleep(0)  # the submits are queued, not yet handed to the thread
    await store.close()
    orders = [(await submit)[0] for submit in submits]
    assert_matches_the_file(store, orders)


async def test_completions_of_one_iteration_share_a_batch_and_stay_fenced(
    store: SqliteStore,
) -> None:
    for tier in ("vip", "regular", "regular"):
        await store.submit(new_order(tier))
    first_x, y, z = await store.claim("w", 3, 30.0)
    assert await store.release([(first_x.order.id, first_x.token)]) == 1
    (x,) = await store.claim("w", 1, 30.0)
    assert x.order.id == first_x.order.id and x.token != first_x.token
    before = store.committed_batches
    results = await asyncio.gather(
        store.complete(x.order.id, first_x.token, "stale"),  # lost lease, listed first
        store.complete(x.order.id, x.token, {"by": "current"}),
        store.complete(y.order.id, y.token, [1, 2]),
        store.complete(y.order.id, y.token, "again"),  # the same lease, twice
        store.complete(z.order.id, "not-a-token", None),
    )
    assert store.committed_batches - before == 1
    assert results == [False, True, True, False, False]
    done_x, done_y, still_z = [await store.get(lease.order.id) for lease in (x, y, z)]
    assert done_x is not None and done_x.result == {"by": "current"}
    assert done_y is not None and done_y.result == [1, 2]
    assert still_z is not None and still_z.status.value == "running"
    assert counters(store) == {
        ("vip", "succeeded"): 1, ("regular", "succeeded"): 1, ("regular", "running"): 1,
    }


async def test_one_claim_leases_each_order_with_its_own_fresh_token(store: SqliteStore) -> None:
    for _ in range(5):
        await store.submit(new_order())
    leases = await store.claim("w", 5, 30.0)
    assert len({lease.token for lease in leases}) == 5
    await store.release([(lease.order.id, lease.token) for lease in leases])
    again = await store.claim("w", 5, 30.0)
    assert {lease.token for lease in again}.isdisjoint(lease.token for lease in leases)
    with sqlite3.connect(store.path) as other:
        on_file = dict(other.execute("SELECT id, lease_token FROM orders").fetchall())
    assert on_file == {lease.order.id: lease.token for lease in again}


@pytest.mark.parametrize("token", ["", "abc", "abc.", "abc.x1", "abc.²", "abc.-3", "1.2.999999"])
async def test_a_token_this_store_never_handed_out_completes_nothing(
    store: SqliteStore, token: str,
) -> None:
    await store.submit(new_order())
    (lease,) = await store.claim("w", 1, 30.0)
    assert not await store.complete(lease.order.id, token, None)
    assert await store.complete(lease.order.id, lease.token, None)


async def test_a_worker_write_rides_along_with_submissions_that_keep_coming(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    await store.submit(new_order())
    (lease,) = await store.claim("w", 1, 30.0)
    monkeypatch.setattr(sqlite_writer, "LINGER_SECONDS", 30.0)
    monkeypatch.setattr(sqlite_writer, "BUSY_WINDOW_SECONDS", 30.0)
    await store.submit(new_order())  # submissions are coming
    before = store.committed_batches
    completing = asyncio.ensure_future(store.complete(lease.order.id, lease.token, None))
    await asyncio.sleep(0.05)
    assert not completing.done()  # waiting for company, not for 30 s
    await store.submit(new_order())
    assert await asyncio.wait_for(completing, 5.0)
    assert store.committed_batches - before == 1


async def test_a_worker_write_goes_at_once_when_nothing_else_is_coming(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    await store.submit(new_order())
    monkeypatch.setattr(sqlite_writer, "LINGER_SECONDS", 30.0)
    monkeypatch.setattr(sqlite_writer, "BUSY_WINDOW_SECONDS", 0.0)
    (lease,) = await asyncio.wait_for(store.claim("w", 1, 30.0), 5.0)
    assert await asyncio.wait_for(store.complete(lease.order.id, lease.token, None), 5.0)
