"""Retention (Store.prune_finished): only final orders that finished longer ago than the given
age are deleted, on the store's own clock, at most `limit` per call and the longest finished
first; queued and running orders are never touched; a deleted order frees its idempotency key
and leaves the counts and listings as if it had never been."""

from __future__ import annotations

import asyncio

from skipline.domain.models import Order, OrderQuery, Status, TierCounts
from skipline.store.base import Store
from skipline.testing import make_new_order
from tests.contract.helpers import LEASE, fetch

RETAIN = 0.3
"""The retention the tests prune with; measured on the store's clock, so real time must pass."""

PAST_RETAIN = 0.6
"""How long to sleep so that orders finished before it are surely past RETAIN."""


async def finished(
    store: Store, how: Status, tier: str = "regular", owner: str = "",
    idempotency_key: str | None = None,
) -> Order:
    """A new order taken to `how` (succeeded, failed for good, or cancelled). Claims, so the
    order must be the best one ready (the caller keeps other orders out of its way)."""
    order, _ = await store.submit(
        make_new_order(tier, owner=owner, idempotency_key=idempotency_key))
    if how is Status.CANCELLED:
        await store.cancel(order.id)
    else:
        (lease,) = await store.claim("w", 1, LEASE)
        assert lease.order.id == order.id
        if how is Status.SUCCEEDED:
            assert await store.complete(order.id, lease.token, "done")
        else:
            assert await store.fail(order.id, lease.token, "boom", None) is Status.FAILED
    done = await fetch(store, order.id)
    assert done.status is how
    return done


async def test_only_final_orders_past_the_retention_are_deleted(store: Store) -> None:
    old = [await finished(store, status)
           for status in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)]
    running, _ = await store.submit(make_new_order())
    (lease,) = await store.claim("w", 1, LEASE)
    assert lease.order.id == running.id
    retrying, _ = await store.submit(make_new_order())
    (retry_lease,) = await store.claim("w", 1, LEASE)
    assert await store.fail(retrying.id, retry_lease.token, "again", 3600.0) is Status.QUEUED
    queued, _ = await store.submit(make_new_order())
    await asyncio.sleep(PAST_RETAIN)
    recent = [await finished(store, Status.SUCCEEDED, "vip"),
              await finished(store, Status.CANCELLED)]

    assert await store.prune_finished(RETAIN, 100) == 3

    for order in old:
        assert await store.get(order.id) is None, f"a {order.status} order was kept"
    kept = {order.id: order.status for order in recent}
    kept |= {running.id: Status.RUNNING, retrying.id: Status.QUEUED, queued.id: Status.QUEUED}
    for order_id, status in kept.items():
        assert (await fetch(store, order_id)).status is status
    assert await store.prune_finished(RETAIN, 100) == 0


async def test_running_and_queued_orders_are_kept_however_old(store: Store) -> None:
    running, _ = await store.submit(make_new_order())
    (lease,) = await store.claim("w", 1, LEASE)
    queued, _ = await store.submit(make_new_order())
    await asyncio.sleep(PAST_RETAIN)

    assert await store.prune_finished(0.0, 100) == 0

    assert (await fetch(store, running.id)).status is Status.RUNNING
    assert (await fetch(store, queued.id)).status is Status.QUEUED
    assert await store.complete(running.id, lease.token, "still mine")


async def test_nothing_is_deleted_before_its_retention(store: Store) -> None:
    order = await finished(store, Status.SUCCEEDED)

    assert await store.prune_finished(3600.0, 100) == 0

    assert (await fetch(store, order.id)).status is Status.SUCCEEDED


async def test_each_call_deletes_at_most_limit_the_longest_finished_first(store: Store) -> None:
    statuses = [Status.SUCCEEDED, Status.CANCELLED, Status.FAILED, Status.SUCCEEDED,
                Status.CANCELLED]
    orders = []
    for status in statuses:
        orders.append(await finished(store, status))
        await asyncio.sleep(0.01)  # distinct finish times, in this order
    await asyncio.sleep(PAST_RETAIN)

    assert await store.prune_finished(RETAIN, 2) == 2
    assert [await store.get(order.id) is None for order in orders] == [
        True, True, False, False, False]
    assert await store.prune_finished(RETAIN, 2) == 2
    assert await store.prune_finished(RETAIN, 2) == 1
    assert await store.prune_finished(RETAIN, 2) == 0
    for order in orders:
        assert await store.get(order.id) is None


async def test_a_pruned_orders_idempotency_key_is_free_again(store: Store) -> None:
    first = await finished(store, Status.SUCCEEDED, owner="alice", idempotency_key="k-1")
    replay, created = await store.submit(
        make_new_order(owner="alice", idempotency_key="k-1"))
    assert (replay.id, created) == (first.id, False)
    await asyncio.sleep(PAST_RETAIN)

    assert await store.prune_finished(RETAIN, 100) == 1

    again, created = await store.submit(make_new_order(owner="alice", idempotency_key="k-1"))
    assert created is True
    assert again.id != first.id
    assert again.status is Status.QUEUED
    assert (await fetch(store, again.id)).idempotency_key == "k-1"
    assert await store.get(first.id) is None


async def test_counts_and_listings_forget_pruned_orders(store: Store) -> None:
    pruned = [await finished(store, Status.SUCCEEDED), await finished(store, Status.FAILED)]
    await asyncio.sleep(PAST_RETAIN)
    kept = await finished(store, Status.SUCCEEDED)
    queued, _ = await store.submit(make_new_order())

    assert await store.prune_finished(RETAIN, 100) == 2

    stats = await store.stats()
    assert stats.counts.get("regular", TierCounts()) == TierCounts(queued=1, succeeded=1)
    assert await store.queued_counts() == {"regular": 1}
    listed = await store.list_orders(OrderQuery(limit=10))
    assert [order.id for order in listed] == [queued.id, kept.id]
    assert not {order.id for order in pruned} & {order.id for order in listed}
