"""Invariant 4: a claim is a lease with a fresh token; expired leases are rescued into the
order's original place; a lost lease can no longer complete, fail or renew the order."""

from __future__ import annotations

import asyncio
import time

from skipline.domain.models import Status
from skipline.store.base import Store
from skipline.testing import make_new_order, submit_all
from tests.contract.helpers import LEASE, PAST_SHORT_LEASE, SHORT_LEASE, fetch


async def test_a_claim_marks_orders_running_with_distinct_tokens(store: Store) -> None:
    orders = await submit_all(store, [make_new_order() for _ in range(3)], chunk=1)

    leases = await store.claim("w", 3, LEASE)

    assert [lease.order.id for lease in leases] == [order.id for order in orders]
    assert len({lease.token for lease in leases}) == 3
    assert all(lease.token for lease in leases)
    for submitted, lease in zip(orders, leases, strict=True):
        stored = await fetch(store, lease.order.id)
        for seen in (lease.order, stored):
            assert seen.status is Status.RUNNING
            assert seen.attempts == 1
            assert seen.rescues == 0
            assert seen.seq == submitted.seq
            assert seen.started_at is not None
            assert seen.started_at >= submitted.created_at - 0.001
            assert seen.finished_at is None


async def test_times_are_seconds_since_the_epoch(store: Store) -> None:
    order, _ = await store.submit(make_new_order())
    (lease,) = await store.claim("w", 1, LEASE)

    assert abs(order.created_at - time.time()) < 60
    assert lease.order.started_at is not None
    assert abs(lease.order.started_at - time.time()) < 60


async def test_an_expired_lease_is_rescued_into_its_original_place(store: Store) -> None:
    first, second = await submit_all(store, [make_new_order(), make_new_order()], chunk=1)
    (lease,) = await store.claim("w", 1, SHORT_LEASE)
    (later,) = await submit_all(store, [make_new_order()])
    await asyncio.sleep(PAST_SHORT_LEASE)

    assert await store.rescue_expired(max_rescues=3) == 1

    rescued = await fetch(store, first.id)
    assert rescued.status is Status.QUEUED
    assert rescued.rescues == 1
    assert rescued.attempts == 1
    assert rescued.seq == first.seq
    again = await store.claim("w", 10, LEASE)
    assert [claim.order.id for claim in again] == [first.id, second.id, later.id]
    assert again[0].order.attempts == 2
    assert again[0].token != lease.token


async def test_a_live_lease_is_not_rescued(store: Store) -> None:
    order, _ = await store.submit(make_new_order())
    await store.claim("w", 1, LEASE)

    assert await store.rescue_expired(max_rescues=3) == 0

    assert (await fetch(store, order.id)).status is Status.RUNNING


async def test_a_lost_lease_cannot_complete_fail_or_renew(store: Store) -> None:
    order, _ = await store.submit(make_new_order())
    (old,) = await store.claim("old-worker", 1, SHORT_LEASE)
    await asyncio.sleep(PAST_SHORT_LEASE)
    await store.rescue_expired(max_rescues=3)
    (new,) = await store.claim("new-worker", 1, LEASE)

    assert await store.complete(order.id, old.token, {"by": "old"}) is False
    assert await store.fail(order.id, old.token, "old worker failed", None) is None
    assert await store.fail(order.id, old.token, "old worker failed", 0.0) is None
    assert await store.heartbeat([(order.id, old.token)], LEASE) == set()
    assert await store.release([(order.id, old.token)]) == 0
    still = await fetch(store, order.id)
    assert still.status is Status.RUNNING
    assert still.error is None

    assert await store.complete(order.id, new.token, {"by": "new"}) is True
    done = await fetch(store, order.id)
    assert done.status is Status.SUCCEEDED
    assert done.result == {"by": "new"}
    assert done.finished_at is not None


async def test_a_made_up_token_is_refused(store: Store) -> None:
    order, _ = await store.submit(make_new_order())
    await store.claim("w", 1, LEASE)

    assert await store.complete(order.id, "not-the-token", 1) is False
    assert await store.fail(order.id, "not-the-token", "x", None) is None
    assert await store.heartbeat([(order.id, "not-the-token")], LEASE) == set()
    assert (await fetch(store, order.id)).status is Status.RUNNING


async def test_a_finished_order_cannot_be_completed_again(store: Store) -> None:
    order, _ = await store.submit(make_new_order())
    (lease,) = await store.claim("w", 1, LEASE)
    assert await store.complete(order.id, lease.token, "first") is True

    assert await store.complete(order.id, lease.token, "second") is False
    assert await store.fail(order.id, lease.token, "late", None) is None
    assert await store.heartbeat([(order.id, lease.token)], LEASE) == set()
    done = await fetch(store, order.id)
    assert done.status is Status.SUCCEEDED
    assert done.result == "first"


async def test_a_heartbeat_keeps_the_lease_from_being_rescued(store: Store) -> None:
    kept, dropped = await submit_all(store, [make_new_order(), make_new_order()], chunk=1)
    leases = {lease.order.id: lease for lease in await store.claim("w", 2, 0.8)}
    await asyncio.sleep(0.5)

    renewed = await store.heartbeat([(kept.id, leases[kept.id].token)], 0.8)
    await asyncio.sleep(0.5)

    assert renewed == {kept.id}
    assert await store.rescue_expired(max_rescues=3) == 1
    assert (await fetch(store, kept.id)).status is Status.RUNNING
    assert (await fetch(store, dropped.id)).status is Status.QUEUED
    assert await store.complete(kept.id, leases[kept.id].token, None) is True


async def test_a_heartbeat_reports_only_the_leases_still_held(store: Store) -> None:
    orders = await submit_all(store, [make_new_order() for _ in range(3)], chunk=1)
    leases = await store.claim("w", 3, LEASE)
    assert await store.complete(orders[1].id, leases[1].token, None)

    held = await store.heartbeat(
        [(lease.order.id, lease.token) for lease in leases] + [("no-such-order", "t")], LEASE,
    )

    assert held == {orders[0].id, orders[2].id}


async def test_an_order_rescued_too_often_is_failed(store: Store) -> None:
    order, _ = await store.submit(make_new_order())
    for _ in range(2):
        assert await store.claim("w", 1, SHORT_LEASE)
        await asyncio.sleep(PAST_SHORT_LEASE)
        assert await store.rescue_expired(max_rescues=1) == 1

    poisoned = await fetch(store, order.id)
    assert poisoned.status is Status.FAILED
    assert poisoned.error
    assert poisoned.finished_at is not None
    assert await store.claim("w", 1, LEASE) == []


async def test_max_rescues_zero_fails_on_the_first_expiry(store: Store) -> None:
    order, _ = await store.submit(make_new_order())
    await store.claim("w", 1, SHORT_LEASE)
    await asyncio.sleep(PAST_SHORT_LEASE)

    assert await store.rescue_expired(max_rescues=0) == 1

    assert (await fetch(store, order.id)).status is Status.FAILED


async def test_release_puts_running_orders_back_in_their_place_at_once(store: Store) -> None:
    first, second = await submit_all(store, [make_new_order(), make_new_order()], chunk=1)
    leases = await store.claim("w", 2, LEASE)
    (later,) = await submit_all(store, [make_new_order()])

    released = await store.release([(lease.order.id, lease.token) for lease in leases])

    assert released == 2
    for order in (first, second):
        back = await fetch(store, order.id)
        assert back.status is Status.QUEUED
        assert back.seq == order.seq
    again = await store.claim("w", 10, LEASE)
    assert [lease.order.id for lease in again] == [first.id, second.id, later.id]


async def test_release_ignores_leases_no_longer_held(store: Store) -> None:
    order, _ = await store.submit(make_new_order())
    (lease,) = await store.claim("w", 1, LEASE)
    await store.complete(order.id, lease.token, None)

    assert await store.release([(order.id, lease.token), ("no-such-order", "t")]) == 0

    assert (await fetch(store, order.id)).status is Status.SUCCEEDED
