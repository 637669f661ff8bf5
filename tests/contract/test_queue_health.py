"""Queue health, what the dashboard shows an operator: per tier and per kind the due queued
orders, the age of the oldest, how many are overdue and how long the longest-waiting ones have
waited (waits not yet over, counted from when each became due); the busiest fair-share groups;
what succeeded and failed lately. Orders scheduled for later or waiting out a retry's backoff
are not waiting for a worker, so they are left out until due."""

from __future__ import annotations

import asyncio
import time

from skipline.domain.models import Status
from skipline.domain.reporting import BUSIEST_GROUPS
from skipline.store.base import Store
from skipline.testing import make_new_order, submit_all
from tests.contract.helpers import LEASE

WINDOW = 60.0


async def test_an_empty_store_reports_nothing_waiting(store: Store) -> None:
    health = await store.queue_health(WINDOW)

    assert health.tiers == {} and health.groups == []
    assert (health.succeeded, health.failed) == (0, 0)


async def test_the_oldest_queued_order_ages_while_it_waits(store: Store) -> None:
    await submit_all(store, [make_new_order("regular") for _ in range(3)], chunk=1)
    await submit_all(store, [make_new_order("vip")], chunk=1)

    first = await store.queue_health(WINDOW)
    await asyncio.sleep(0.3)
    later = await store.queue_health(WINDOW)

    assert {tier: health.ready for tier, health in first.tiers.items()} == {
        "regular": 3, "vip": 1}
    regular, regular_later = first.tiers["regular"], later.tiers["regular"]
    assert regular.oldest_age is not None and regular_later.oldest_age is not None
    assert 0 <= regular.oldest_age < 30
    assert regular_later.oldest_age >= regular.oldest_age + 0.25
    assert len(regular.waiting) == 3
    assert regular.waiting == sorted(regular.waiting, reverse=True), "longest first"
    assert regular.waiting[0] == regular.oldest_age


async def test_started_orders_leave_the_waiting_and_overdue_ones_are_counted(
    store: Store,
) -> None:
    await submit_all(store, [make_new_order("regular", max_wait=0.1) for _ in range(3)], chunk=1)
    await submit_all(store, [make_new_order("regular", max_wait=600.0)], chunk=1)
    await asyncio.sleep(0.3)
    [claimed] = await store.claim("w", 1, LEASE)

    regular = (await store.queue_health(WINDOW)).tiers["regular"]

    assert claimed.order.overdue_at is not None
    assert regular.ready == 3 and len(regular.waiting) == 3
    assert regular.overdue == 2, "the claimed overdue order is not waiting any more"


async def test_the_busiest_groups_come_first_with_their_running_orders(store: Store) -> None:
    await submit_all(store, [make_new_order("regular", owner="shop", customer="c1")
                             for _ in range(2)], chunk=1)
    await submit_all(store, [make_new_order("regular", owner="shop", customer="c2")
                             for _ in range(3)], chunk=1)
    await submit_all(store, [make_new_order("vip", owner="bank")], chunk=1)
    [running] = await store.claim("w", 1, LEASE)

    groups = (await store.queue_health(WINDOW)).groups

    assert running.order.owner == "bank"
    shown = [(g.tier, g.owner, g.customer, g.ready, g.running) for g in groups]
    assert shown == [("regular", "shop", "c2", 3, 0), ("regular", "shop", "c1", 2, 0),
                     ("vip", "bank", "", 0, 1)]
    assert groups[0].oldest_age is not None and groups[2].oldest_age is None


async def test_only_the_busiest_groups_are_reported(store: Store) -> None:
    orders = [make_new_order("regular", owner="k", customer=f"c{n:02}")
              for n in range(BUSIEST_GROUPS + 2)]
    await submit_all(store, orders, chunk=5)

    groups = (await store.queue_health(WINDOW)).groups

    assert len(groups) == BUSIEST_GROUPS
    assert [g.customer for g in groups] == [f"c{n:02}" for n in range(BUSIEST_GROUPS)]


async def test_recent_outcomes_count_successes_and_failures_not_retries(store: Store) -> None:
    await submit_all(store, [make_new_order() for _ in range(4)], chunk=1)
    done, failed, retried, cancelled = await store.claim("w", 4, LEASE)
    assert await store.complete(done.order.id, done.token, {"ok": True})
    assert await store.fail(failed.order.id, failed.token, "boom", None) is Status.FAILED
    assert await store.fail(retried.order.id, retried.token, "again", 60.0) is Status.QUEUED
    assert await store.release([(cancelled.order.id, cancelled.token)]) == 1
    await store.cancel(cancelled.order.id)

    health = await store.queue_health(WINDOW)
    await asyncio.sleep(0.3)
    gone = await store.queue_health(0.2)

    assert (health.succeeded, health.failed) == (1, 1)
    assert (gone.succeeded, gone.failed) == (0, 0), "outside the window"
    assert health.tiers == {}, "the order waiting out its retry's backoff is not due"


async def test_orders_scheduled_for_later_wait_only_once_due(store: Store) -> None:
    later = time.time() + 3600
    await submit_all(store, [make_new_order(not_before=later) for _ in range(2)], chunk=1)
    await submit_all(store, [make_new_order(not_before=time.time() - 100)], chunk=1)
    await asyncio.sleep(0.2)

    health = await store.queue_health(WINDOW)

    regular = health.tiers["regular"]
    assert regular.ready == 1, "the two scheduled for later are not due"
    assert regular.oldest_age is not None and 0.15 <= regular.oldest_age < 30, (
        "counted from acceptance: its not_before was already past")
    assert [(g.ready, g.running) for g in health.groups] == [(1, 0)]


async def test_kinds_have_their_own_lines(store: Store) -> None:
    await submit_all(store, [make_new_order("regular", kind="ship") for _ in range(2)], chunk=1)
    await submit_all(store, [make_new_order("vip", kind="ship"), make_new_order("vip")], chunk=1)
    await asyncio.sleep(0.1)

    health = await store.queue_health(WINDOW)

    assert {kind: line.ready for kind, line in health.kinds.items()} == {
        "ship": 3, "default": 1}
    assert len(health.kinds["ship"].waiting) == 3
    ship_oldest = health.kinds["ship"].oldest_age
    assert ship_oldest is not None and ship_oldest == health.tiers["regular"].oldest_age
