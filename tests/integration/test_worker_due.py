"""An idle pool starts a waiting order (scheduled, or a retry backing off) when it comes due,
not at its next poll: its wait is bounded by the store's `next_due`, and a submission due
sooner cuts a current wait short. The poll interval is set long here (POLL_LONG) so that a pool
relying on its poll would be seconds late, not the fraction of a second allowed (LATE)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest

from skipline import Handlers
from skipline.domain.models import JSON, Order, Status
from skipline.runtime import Workers
from skipline.store import open_store
from skipline.store.base import Store
from skipline.testing import make_new_order
from skipline.worker import pool as pool_module
from tests.integration.test_worker_kinds import fast, final, start
from tests.store_kinds import ALL_STORE_KINDS, POSTGRES, SQLITE, kind_params, url_for

POLL_LONG = 5.0
LATE = 0.3
"""Seconds after its due time by which an order must have started (measured ~10 ms when idle;
the margin is for a loaded CI machine; relying on the poll it would be about POLL_LONG)."""


@pytest.fixture(autouse=True)
def long_poll(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(pool_module, "POLL_SECONDS", POLL_LONG)
    yield


@pytest.fixture(params=ALL_STORE_KINDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    opened = open_store(url_for(request))
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def running() -> AsyncIterator[list[Workers]]:
    started: list[Workers] = []
    yield started
    for workers in started:
        await workers.drain(1.0)


class Starts:
    """A handler that notes when each order started (wall clock, like `not_before`) and fails
    the orders named in `fail_once` on their first run."""

    def __init__(self, fail_once: frozenset[str] = frozenset()) -> None:
        self.at: dict[str, list[float]] = {}
        self.fail_once = fail_once

    async def __call__(self, order: Order) -> JSON:
        self.at.setdefault(order.id, []).append(time.time())
        if order.id in self.fail_once and order.attempts == 1:
            raise RuntimeError("first run fails")
        return None


async def test_scheduled_orders_start_when_due_in_any_submission_order(
    store: Store, running: list[Workers],
) -> None:
    starts = Starts()
    await start(running, store, fast(workers=2), Handlers.single(starts))
    now = time.time()
    # Submitted latest-due first: each submission due sooner must cut the current wait short.
    dues = {(await store.submit(make_new_order(not_before=now + ahead)))[0].id: now + ahead
            for ahead in (0.9, 0.5, 0.7)}

    for order_id, due in dues.items():
        assert (await final(store, order_id)).status is Status.SUCCEEDED
        (started,) = starts.at[order_id]
        assert due - 0.01 <= started < due + LATE, f"started {started - due:+.3f} s from due"


async def test_a_retry_failed_elsewhere_starts_when_its_backoff_ends(
    store: Store, running: list[Workers],
) -> None:
    order, _ = await store.submit(make_new_order())
    (lease,) = await store.claim("another-process", 1, 30.0)
    assert await store.fail(order.id, lease.token, "boom", 0.6) is Status.QUEUED
    due = time.time() + 0.6
    starts = Starts()
    await start(running, store, fast(workers=2), Handlers.single(starts))

    assert (await final(store, order.id)).status is Status.SUCCEEDED
    (started,) = starts.at[order.id]
    assert due - 0.05 <= started < due + LATE, f"started {started - due:+.3f} s from due"


async def test_a_retry_of_this_pool_starts_when_its_backoff_ends(
    store: Store, running: list[Workers],
) -> None:
    order, _ = await store.submit(make_new_order())
    starts = Starts(fail_once=frozenset({order.id}))
    settings = fast(workers=2, backoff_base=0.5, backoff_max=0.5)
    await start(running, store, settings, Handlers.single(starts))

    done = await final(store, order.id)
    assert (done.status, done.attempts) == (Status.SUCCEEDED, 2)
    first, second = starts.at[order.id]
    # The backoff is 0.5 s with 10 % jitter; what the pool adds on top is its own lateness.
    assert 0.45 - 0.01 <= second - first < 0.55 + LATE, f"retried after {second - first:.3f} s"


@pytest.fixture(params=kind_params([SQLITE, POSTGRES]))
async def two_stores(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Store, Store]]:
    """Two stores on one database, as two processes would have."""
    opened = [open_store(url_for(request)), open_store(url_for(request))]
    for each in opened:
        await each.open()
    try:
        yield opened[0], opened[1]
    finally:
        for each in opened:
            await each.close()


async def test_an_order_scheduled_by_another_process_starts_when_due(
    two_stores: tuple[Store, Store], running: list[Workers],
) -> None:
    """The other process's commit wakes the idle pool (PostgreSQL: its NOTIFY; SQLite: the
    look at the file's commits), which then reads the new due time."""
    mine, theirs = two_stores
    starts = Starts()
    await start(running, mine, fast(workers=2), Handlers.single(starts))
    await mine.submit(make_new_order(not_before=time.time() + 3.0))  # an alarm to cut short
    due = time.time() + 0.5

    order, _ = await theirs.submit(make_new_order(not_before=due))

    assert (await final(mine, order.id)).status is Status.SUCCEEDED
    (started,) = starts.at[order.id]
    assert due - 0.01 <= started < due + LATE, f"started {started - due:+.3f} s from due"
