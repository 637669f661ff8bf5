"""Idle workers sleep in `wait_for_work`: woken at once by new or released work, and otherwise
for the whole `max_seconds` (so an idle pool does not spin)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from skipline.store.base import Store
from skipline.testing import make_new_order
from tests.contract.helpers import LEASE

DRAIN = 0.05
"""A first short wait absorbs any wake-up left over from before the test's own event."""


async def woken_within(store: Store, event: Callable[[], Awaitable[object]]) -> float:
    """Seconds from `event()` until a pending `wait_for_work(10)` returns (at most 2)."""
    await store.wait_for_work(DRAIN)
    waiter = asyncio.create_task(store.wait_for_work(10.0))
    await asyncio.sleep(0.1)
    assert not waiter.done(), "wait_for_work returned with nothing happening"
    started = time.monotonic()
    await event()
    await asyncio.wait_for(waiter, 2.0)
    return time.monotonic() - started


async def test_a_submission_wakes_a_waiting_worker_at_once(store: Store) -> None:
    elapsed = await woken_within(store, lambda: store.submit(make_new_order()))

    assert elapsed < 1.0


async def test_a_scheduled_submission_wakes_a_waiting_worker_at_once(store: Store) -> None:
    """So an idle pool reads `next_due` again: the new order may be due before its alarm."""
    scheduled = make_new_order(not_before=time.time() + 3600.0)

    elapsed = await woken_within(store, lambda: store.submit(scheduled))

    assert elapsed < 1.0


async def test_a_release_wakes_a_waiting_worker_at_once(store: Store) -> None:
    await store.submit(make_new_order())
    (lease,) = await store.claim("w", 1, LEASE)

    elapsed = await woken_within(
        store, lambda: store.release([(lease.order.id, lease.token)]),
    )

    assert elapsed < 1.0


async def test_with_nothing_to_do_it_waits_the_whole_time(store: Store) -> None:
    await store.wait_for_work(DRAIN)
    started = time.monotonic()

    await store.wait_for_work(0.4)

    assert 0.35 <= time.monotonic() - started < 2.0
