"""Waiting for a finish (`wait_final`, behind `GET /orders/{id}?wait=S`) between two
SqliteStores on one file, each with its own writer connection as two processes have: a finish
committed by the other store wakes the waiter within a few 10 ms looks, the waited ids are read
back a chunk of 500 at a time per commit seen (not one read per waiter), only the waiters of
final orders are answered, and this store's own finishes cause no read-back at all.
tests/acceptance/test_sqlite_wakeups.py does the same across real processes."""

from __future__ import annotations

import asyncio
import math
import time

from skipline.domain.models import Order
from skipline.store.sqlite import SqliteStore
from skipline.store.sqlite.foreign_finishes import CHUNK
from skipline.testing import make_new_order

LEASE = 30.0
WAIT = 20.0
"""Each waiter's own deadline: far beyond every bound below, so none answers by running out."""
WOKEN_WITHIN = 0.25
"""Seconds from the other store's commit: 25 looks' worth, for a busy CI machine."""


async def parked(store: SqliteStore, orders: list[Order]) -> list[asyncio.Task[Order | None]]:
    """A wait_final per order, each parked (none answered) before this returns."""
    waiters = [asyncio.create_task(store.wait_final(order.id, WAIT)) for order in orders]
    await asyncio.sleep(0.1)
    assert not any(waiter.done() for waiter in waiters), "answered with nothing finished"
    return waiters


async def test_a_completion_in_the_other_store_wakes_a_waiter_promptly(
    sqlite_api_and_worker: tuple[SqliteStore, SqliteStore],
) -> None:
    api, worker = sqlite_api_and_worker
    order, _ = await api.submit(make_new_order())
    (lease,) = await worker.claim("w", 1, LEASE)
    (waiter,) = await parked(api, [order])

    assert await worker.complete(lease.order.id, lease.token, {"ok": True})
    committed = time.monotonic()
    answered = await asyncio.wait_for(waiter, 2.0)

    assert time.monotonic() - committed < WOKEN_WITHIN
    assert answered is not None and answered.status == "succeeded"
    assert answered.result == {"ok": True}


async def test_a_cancel_and_a_failure_for_good_in_the_other_store_wake_theirs(
    sqlite_api_and_worker: tuple[SqliteStore, SqliteStore],
) -> None:
    api, worker = sqlite_api_and_worker
    cancelled, _ = await worker.submit(make_new_order())
    failing, _ = await worker.submit(make_new_order())
    (lease,) = await worker.claim("w", 1, LEASE)
    assert lease.order.id in (cancelled.id, failing.id)
    if lease.order.id == cancelled.id:
        cancelled, failing = failing, cancelled
    waiters = await parked(api, [cancelled, failing])

    await worker.cancel(cancelled.id)
    await worker.fail(failing.id, lease.token, "for good", None)
    committed = time.monotonic()
    answered = await asyncio.wait_for(asyncio.gather(*waiters), 2.0)

    assert time.monotonic() - committed < WOKEN_WITHIN
    assert [order.status if order else None for order in answered] == ["cancelled", "failed"]


async def test_many_waiters_are_read_back_in_chunks_and_only_finished_ones_answer(
    sqlite_api_and_worker: tuple[SqliteStore, SqliteStore],
) -> None:
    """2.5 chunks of waiters; 3 of their orders finish in the other store."""
    api, worker = sqlite_api_and_worker
    count = 2 * CHUNK + CHUNK // 2
    orders = [(await api.submit(make_new_order()))[0] for _ in range(count)]
    leases = await worker.claim("w", 3, LEASE)
    finished = {lease.order.id for lease in leases}
    waiters = await parked(api, orders)
    reads_before, batches_before = api.foreign_finish_reads, worker.committed_batches

    await asyncio.gather(*(worker.complete(lease.order.id, lease.token, None)
                           for lease in leases))
    committed = time.monotonic()
    done = [waiter for order, waiter in zip(orders, waiters, strict=True)
            if order.id in finished]
    await asyncio.wait_for(asyncio.gather(*done), 2.0)
    elapsed = time.monotonic() - committed
    await asyncio.sleep(0.1)  # a read-back that woke a wrong waiter would have by now

    assert elapsed < WOKEN_WITHIN
    assert sum(waiter.done() for waiter in waiters) == len(finished) == 3
    reads = api.foreign_finish_reads - reads_before
    commits = worker.committed_batches - batches_before
    assert 1 <= commits <= 3
    assert math.ceil(count / CHUNK) <= reads <= commits * math.ceil(count / CHUNK)
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)


async def test_finishes_in_the_waiters_own_store_cause_no_read_back(
    sqlite_api_and_worker: tuple[SqliteStore, SqliteStore],
) -> None:
    api, _ = sqlite_api_and_worker
    orders = [(await api.submit(make_new_order()))[0] for _ in range(2)]
    leases = await api.claim("w", 2, LEASE)
    waiters = await parked(api, orders)
    reads_before = api.foreign_finish_reads

    for lease in leases:
        assert await api.complete(lease.order.id, lease.token, None)
    answered = await asyncio.wait_for(asyncio.gather(*waiters), 1.0)
    await asyncio.sleep(0.1)

    assert [order.status if order else None for order in answered] == ["succeeded"] * 2
    assert api.foreign_finish_reads == reads_before
