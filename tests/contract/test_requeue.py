"""`requeue`: a failed or cancelled order is queued again with a fresh attempts budget, keeping
its tier, priority and place; how its last run ended stays in its history."""

from __future__ import annotations

import pytest

from skipline.domain.errors import OrderNotFound, OrderNotRequeueable
from skipline.domain.models import Status
from skipline.store.base import Store
from skipline.testing import make_new_order
from tests.contract.helpers import LEASE, fetch


async def _failed_for_good(store: Store, runs: int = 2) -> str:
    order, _ = await store.submit(make_new_order("vip", payload={"n": 1}))
    for run in range(runs):
        (lease,) = await store.claim("w", 1, LEASE)
        await store.fail(order.id, lease.token, f"boom {run}", None if run == runs - 1 else 0.0)
    return order.id


async def test_a_failed_order_is_queued_again_with_a_fresh_budget(store: Store) -> None:
    order_id = await _failed_for_good(store)
    before = await fetch(store, order_id)
    assert (before.status, before.attempts) == (Status.FAILED, 2)

    queued = await store.requeue(order_id)

    assert queued.status is Status.QUEUED
    assert (queued.attempts, queued.rescues) == (0, 0)
    assert (queued.tier, queued.priority, queued.seq, queued.payload) == (
        before.tier, before.priority, before.seq, before.payload)
    assert queued.finished_at is None and queued.result is None
    assert queued.error == "boom 1", "the previous error stays visible"
    [past] = queued.history
    assert (past.status, past.error, past.attempts) == (Status.FAILED, "boom 1", 2)
    assert past.finished_at == pytest.approx(before.finished_at, abs=0.01)
    assert await fetch(store, order_id) == queued


async def test_a_requeued_order_is_claimed_and_can_succeed(store: Store) -> None:
    order_id = await _failed_for_good(store, runs=1)
    await store.requeue(order_id)

    (lease,) = await store.claim("w", 1, LEASE)
    assert lease.order.id == order_id and lease.order.attempts == 1
    assert await store.complete(order_id, lease.token, {"ok": True})

    done = await fetch(store, order_id)
    assert done.status is Status.SUCCEEDED
    assert [run.status for run in done.history] == [Status.FAILED]


async def test_each_requeue_adds_to_the_history(store: Store) -> None:
    order, _ = await store.submit(make_new_order())
    await store.cancel(order.id)
    await store.requeue(order.id)
    (lease,) = await store.claim("w", 1, LEASE)
    await store.fail(order.id, lease.token, "late", None)

    again = await store.requeue(order.id)

    assert [(run.status, run.error, run.attempts) for run in again.history] == [
        (Status.CANCELLED, None, 0), (Status.FAILED, "late", 1)]
    counts = (await store.stats()).counts["regular"]
    assert (counts.queued, counts.failed, counts.cancelled) == (1, 0, 0)


async def test_queued_running_and_succeeded_orders_are_not_requeued(store: Store) -> None:
    queued, _ = await store.submit(make_new_order())
    with pytest.raises(OrderNotRequeueable):
        await store.requeue(queued.id)
    (lease,) = await store.claim("w", 1, LEASE)
    with pytest.raises(OrderNotRequeueable):
        await store.requeue(queued.id)
    await store.complete(queued.id, lease.token, None)
    with pytest.raises(OrderNotRequeueable):
        await store.requeue(queued.id)
    with pytest.raises(OrderNotFound):
        await store.requeue("no-such-order")
    assert (await fetch(store, queued.id)).status is Status.SUCCEEDED
