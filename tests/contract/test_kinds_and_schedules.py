"""Kinds and scheduled orders: a claim takes only the kinds it asks for, in claim-rule order
among them; an order scheduled for later (`not_before`) is invisible to claims until it is
due, then competes like any order; a scheduled order can be cancelled, and its overdue clock
starts when it is due (invariants 2 and 3, docs/architecture.md)."""

from __future__ import annotations

import asyncio
import time

from skipline.domain.models import OrderQuery, Status
from skipline.store.base import Store
from skipline.testing import claim_all, make_new_order
from tests.contract.helpers import LEASE, fetch

SOON = 0.4
"""How far ahead a test schedules an order it then waits for (real time: PostgreSQL measures
on its own clock)."""

FAR = 30 * 86400.0


async def test_a_claim_takes_only_the_kinds_it_asks_for(store: Store) -> None:
    ship, refund, other = [
        (await store.submit(make_new_order(kind=kind)))[0]
        for kind in ("ship", "refund", "default")]

    shipped = await claim_all(store, kinds=["ship"])
    assert [lease.order.id for lease in shipped] == [ship.id]
    assert shipped[0].order.kind == "ship"
    rest = await claim_all(store, kinds=["refund", "default"])
    assert [lease.order.id for lease in rest] == [refund.id, other.id]


async def test_kinds_none_claims_every_kind_in_claim_order(store: Store) -> None:
    regular = (await store.submit(make_new_order("regular", kind="ship")))[0]
    vip = (await store.submit(make_new_order("vip", kind="refund")))[0]

    claimed = [lease.order.id for lease in await claim_all(store)]

    assert claimed == [vip.id, regular.id]


async def test_claims_among_their_kinds_follow_priority_then_fifo(store: Store) -> None:
    plan = [("regular", "ship"), ("regular", "mail"), ("vip", "mail"), ("regular", "ship"),
            ("vip", "ship"), ("vip", "refund")]
    ids = [(await store.submit(make_new_order(tier, kind=kind)))[0].id for tier, kind in plan]

    claimed = [lease.order.id for lease in await claim_all(store, batch=1, kinds=["ship", "mail"])]

    assert claimed == [ids[2], ids[4], ids[0], ids[1], ids[3]]
    assert (await fetch(store, ids[5])).status is Status.QUEUED


async def test_an_overdue_order_of_another_kind_does_not_block_a_claim(store: Store) -> None:
    overdue = (await store.submit(make_new_order(kind="refund", max_wait=0.0)))[0]
    ship = (await store.submit(make_new_order(kind="ship")))[0]
    await asyncio.sleep(0.05)

    claimed = await store.claim("w", 5, LEASE, ["ship"])

    assert [lease.order.id for lease in claimed] == [ship.id]
    assert (await fetch(store, overdue.id)).status is Status.QUEUED


async def test_a_scheduled_order_is_invisible_until_due(store: Store) -> None:
    order, _ = await store.submit(make_new_order(not_before=time.time() + SOON))
    assert order.not_before is not None and order.available_at >= order.not_before - 0.01

    assert await store.claim("w", 5, LEASE) == []
    await asyncio.sleep(SOON + 0.15)
    (lease,) = await store.claim("w", 5, LEASE)

    assert lease.order.id == order.id
    assert lease.order.not_before is not None
    assert abs(lease.order.not_before - order.not_before) < 1e-5
    assert lease.order.started_at is not None and lease.order.started_at >= order.not_before


async def test_a_far_future_backlog_is_never_claimed(store: Store) -> None:
    later = [make_new_order("vip", not_before=time.time() + FAR) for _ in range(50)]
    for new in later:
        await store.submit(new)
    now_order, _ = await store.submit(make_new_order("regular"))

    claimed = await claim_all(store)

    assert [lease.order.id for lease in claimed] == [now_order.id]
    assert (await store.queued_counts()).get("vip") == 50


async def test_due_orders_compete_in_claim_rule_order(store: Store) -> None:
    due_at = time.time() + SOON
    first = (await store.submit(make_new_order("regular", not_before=due_at)))[0]
    second = (await store.submit(make_new_order("regular")))[0]
    vip = (await store.submit(make_new_order("vip", not_before=due_at)))[0]
    await asyncio.sleep(SOON + 0.15)

    claimed = [lease.order.id for lease in await claim_all(store, batch=1)]

    assert claimed == [vip.id, first.id, second.id]


async def test_a_past_not_before_is_due_at_once(store: Store) -> None:
    order, _ = await store.submit(make_new_order(not_before=time.time() - 60.0))

    (lease,) = await store.claim("w", 1, LEASE)

    assert lease.order.id == order.id


async def test_a_scheduled_order_can_be_cancelled_and_never_runs(store: Store) -> None:
    order, _ = await store.submit(make_new_order(not_before=time.time() + SOON))

    cancelled = await store.cancel(order.id)
    await asyncio.sleep(SOON + 0.15)

    assert cancelled.status is Status.CANCELLED
    assert await store.claim("w", 5, LEASE) == []
    assert (await fetch(store, order.id)).status is Status.CANCELLED


async def test_the_overdue_clock_starts_at_not_before(store: Store) -> None:
    due_at = time.time() + FAR
    order, _ = await store.submit(make_new_order(not_before=due_at, max_wait=60.0))

    stored = await fetch(store, order.id)

    assert stored.overdue_at is not None
    assert abs(stored.overdue_at - (due_at + 60.0)) < 0.01


async def test_a_retry_in_backoff_shows_when_it_runs_next(store: Store) -> None:
    await store.submit(make_new_order())
    (lease,) = await store.claim("w", 1, LEASE)
    await store.fail(lease.order.id, lease.token, "boom", retry_delay=FAR)

    waiting = await fetch(store, lease.order.id)

    assert waiting.status is Status.QUEUED
    assert waiting.next_attempt_at(time.time()) == waiting.available_at
    assert waiting.available_at > time.time() + FAR - 60
    assert await store.claim("w", 1, LEASE) == []


async def test_listing_filters_by_kind(store: Store) -> None:
    ship = (await store.submit(make_new_order(kind="ship")))[0]
    await store.submit(make_new_order(kind="refund"))

    listed = await store.list_orders(OrderQuery(kind="ship"))

    assert [order.id for order in listed] == [ship.id]
    assert listed[0].kind == "ship"


async def test_stats_count_and_time_orders_per_kind(store: Store) -> None:
    await store.submit(make_new_order(kind="ship"))
    await store.submit(make_new_order(kind="ship", not_before=time.time() + FAR))
    await store.submit(make_new_order(kind="refund"))
    await claim_all(store, kinds=["refund"])

    stats = await store.stats()

    assert stats.kinds["ship"].queued == 2
    assert stats.kinds["refund"].running == 1
    assert len(stats.kind_waits["refund"]) == 1
    assert "ship" not in stats.kind_waits
