"""Wake-ups between two SqliteStores on one file (each its own writer connection, as two
processes have): a worker-side store waiting for work is woken by the other's commit within
a few of its 10 ms looks, by any write that commits there (not only submissions), never by
its own writes, and a commit made while nobody waited is not missed by the next wait.
tests/acceptance/test_sqlite_wakeups.py does the same across real processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from skipline.store.sqlite import SqliteStore
from skipline.testing import make_new_order

LEASE = 30.0
WOKEN_WITHIN = 0.25
"""Seconds: 25 looks' worth, for a busy CI machine; the poll it replaces took up to 1 s."""


async def woken_within(worker: SqliteStore, event: Callable[[], Awaitable[object]]) -> float:
    """Seconds from the commit of `event()` (in the other store) until the worker's
    wait_for_work(10) returns (0 if it returned first); fails if the wait returns before the
    event. From the commit, not the call: the commit's fsync is not the wake-up's to bound."""
    await worker.wait_for_work(0.05)  # absorbs a wake-up left from before
    waiter = asyncio.create_task(worker.wait_for_work(10.0))
    await asyncio.sleep(0.1)
    assert not waiter.done(), "wait_for_work returned with nothing happening"
    await event()
    committed = time.monotonic()
    await asyncio.wait_for(waiter, 2.0)
    return time.monotonic() - committed


async def test_another_stores_submission_wakes_a_waiting_worker(
    sqlite_api_and_worker: tuple[SqliteStore, SqliteStore],
) -> None:
    api, worker = sqlite_api_and_worker

    elapsed = await woken_within(worker, lambda: api.submit(make_new_order()))

    assert elapsed < WOKEN_WITHIN
    assert len(await worker.claim("w", 5, LEASE)) == 1


async def test_another_stores_release_wakes_a_waiting_worker(
    sqlite_api_and_worker: tuple[SqliteStore, SqliteStore],
) -> None:
    api, worker = sqlite_api_and_worker
    await api.submit(make_new_order())
    (lease,) = await api.claim("elsewhere", 1, LEASE)

    elapsed = await woken_within(worker, lambda: api.release([(lease.order.id, lease.token)]))

    assert elapsed < WOKEN_WITHIN
    assert len(await worker.claim("w", 5, LEASE)) == 1


async def test_a_worker_is_not_woken_by_its_own_claims_and_completions(
    sqlite_api_and_worker: tuple[SqliteStore, SqliteStore],
) -> None:
    api, worker = sqlite_api_and_worker
    await api.submit(make_new_order())
    await worker.wait_for_work(0.05)
    (lease,) = await worker.claim("w", 1, LEASE)
    assert await worker.complete(lease.order.id, lease.token, None)

    started = time.monotonic()
    await worker.wait_for_work(0.3)

    assert time.monotonic() - started >= 0.25


async def test_a_commit_made_while_nobody_waited_wakes_the_next_wait(
    sqlite_api_and_worker: tuple[SqliteStore, SqliteStore],
) -> None:
    api, worker = sqlite_api_and_worker
    await worker.wait_for_work(0.05)
    await api.submit(make_new_order())  # commits while nobody waits

    started = time.monotonic()
    await worker.wait_for_work(0.3)  # a look at the start of this wait sees that commit

    assert time.monotonic() - started < WOKEN_WITHIN
    started = time.monotonic()
    await worker.wait_for_work(0.3)  # and that is the only change: nothing wakes this one
    assert time.monotonic() - started >= 0.25
