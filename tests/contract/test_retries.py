"""Invariant 4, failed runs: retried after a backoff in the order's original place, or failed
for good (dead letter) with the error kept."""

from __future__ import annotations

import asyncio

from skipline.domain.models import Status
from skipline.store.base import Store
from skipline.testing import make_new_order, submit_all
from tests.contract.helpers import LEASE, fetch


async def test_a_retried_order_waits_out_its_delay_then_keeps_its_place(store: Store) -> None:
    retried, _ = await store.submit(make_new_order("vip"))
    (lease,) = await store.claim("w", 1, LEASE)

    status = await store.fail(retried.id, lease.token, "boom", retry_delay=0.5)

    assert status is Status.QUEUED
    waiting = await fetch(store, retried.id)
    assert waiting.status is Status.QUEUED
    assert waiting.error == "boom"
    assert waiting.attempts == 1
    assert (waiting.priority, waiting.seq, waiting.tier) == (retried.priority, retried.seq, "vip")
    (regular,) = await submit_all(store, [make_new_order("regular")])
    assert [claim.order.id for claim in await store.claim("w", 10, LEASE)] == [regular.id]

    (later_vip,) = await submit_all(store, [make_new_order("vip")])
    await asyncio.sleep(0.7)
    again = await store.claim("w", 10, LEASE)

    assert [claim.order.id for claim in again] == [retried.id, later_vip.id]
    assert again[0].order.attempts == 2
    assert again[0].token != lease.token


async def test_a_retry_without_delay_is_claimable_at_once(store: Store) -> None:
    order, _ = await store.submit(make_new_order())
    (lease,) = await store.claim("w", 1, LEASE)

    assert await store.fail(order.id, lease.token, "try again", retry_delay=0.0) is Status.QUEUED

    (again,) = await store.claim("w", 1, LEASE)
    assert again.order.id == order.id
    assert again.order.attempts == 2


async def test_a_final_failure_is_a_dead_letter_with_its_error(store: Store) -> None:
    order, _ = await store.submit(make_new_order())
    (lease,) = await store.claim("w", 1, LEASE)

    status = await store.fail(order.id, lease.token, "ValueError: bad payload", None)

    assert status is Status.FAILED
    dead = await fetch(store, order.id)
    assert dead.status is Status.FAILED
    assert dead.error == "ValueError: bad payload"
    assert dead.finished_at is not None
    assert dead.attempts == 1
    assert await store.claim("w", 1, LEASE) == []
    assert await store.complete(order.id, lease.token, None) is False


async def test_a_long_error_text_is_kept_whole(store: Store) -> None:
    order, _ = await store.submit(make_new_order())
    (lease,) = await store.claim("w", 1, LEASE)
    error = "Traceback (most recent call last):\n" + "  line ünïcode ✓\n" * 500

    await store.fail(order.id, lease.token, error, None)

    assert (await fetch(store, order.id)).error == error
