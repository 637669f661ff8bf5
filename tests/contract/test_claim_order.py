"""Invariants 2 and 3: best effective priority first, FIFO by acceptance within a priority,
overdue orders before everything else (oldest first), and never more than the free slots."""

from __future__ import annotations

import asyncio

from skipline.domain.models import Order, Status
from skipline.store.base import Store
from skipline.testing import claim_all, make_new_order, submit_all
from tests.contract.helpers import LEASE


async def submit_in_turn(store: Store, tiers: list[str]) -> list[str]:
    """Submit one order per tier name, one after the other; their ids in submission order."""
    ids = []
    for tier in tiers:
        order, created = await store.submit(make_new_order(tier))
        assert created
        ids.append(order.id)
    return ids


async def test_vip_is_claimed_before_regular_whatever_the_submission_order(store: Store) -> None:
    ids = await submit_in_turn(store, ["regular", "regular", "vip", "regular", "vip"])

    claimed = [lease.order.id for lease in await store.claim("w", 10, LEASE)]

    assert claimed == [ids[2], ids[4], ids[0], ids[1], ids[3]]


async def test_one_slot_at_a_time_still_follows_priority_then_fifo(store: Store) -> None:
    ids = await submit_in_turn(store, ["regular", "vip", "regular", "vip"])

    claimed = [lease.order.id for lease in await claim_all(store, batch=1)]

    assert claimed == [ids[1], ids[3], ids[0], ids[2]]


async def test_a_vip_submitted_between_claims_jumps_the_regular_queue(store: Store) -> None:
    regular = await submit_in_turn(store, ["regular"] * 3)
    (first,) = await store.claim("w", 1, LEASE)
    (vip,) = await submit_in_turn(store, ["vip"])

    (second,) = await store.claim("w", 1, LEASE)

    assert first.order.id == regular[0]
    assert second.order.id == vip


async def test_ten_thousand_same_tier_orders_are_claimed_in_acceptance_order(
    store: Store,
) -> None:
    chunk = 250
    news = [make_new_order("regular", payload={"n": n}) for n in range(10_000)]
    acknowledged = await submit_all(store, news, chunk=chunk)
    chunk_of = {new.id: n // chunk for n, new in enumerate(news)}

    claimed: list[Order] = []
    while batch := await store.claim("w", 300, LEASE):
        assert len(batch) <= 300
        claimed.extend(lease.order for lease in batch)

    seqs = [order.seq for order in claimed]
    assert len(claimed) == 10_000
    assert len({order.id for order in claimed}) == 10_000
    assert seqs == sorted(seqs), "claims must follow the acceptance sequence"
    assert len(set(seqs)) == 10_000, "every order has its own seq"
    ack_seq = {order.id: order.seq for order in acknowledged}
    assert [ack_seq[order.id] for order in claimed] == seqs, "seq changed after acknowledgement"
    chunks = [chunk_of[order.id] for order in claimed]
    assert chunks == sorted(chunks), "an order acknowledged earlier was claimed later"


async def test_a_claim_never_returns_more_than_its_limit(store: Store) -> None:
    await submit_all(store, [make_new_order() for _ in range(7)])

    sizes = [len(await store.claim("w", limit, LEASE)) for limit in (3, 1, 2, 5, 5)]

    assert sizes == [3, 1, 2, 1, 0]


async def test_a_claim_of_zero_slots_takes_nothing(store: Store) -> None:
    orders = await submit_all(store, [make_new_order() for _ in range(3)])

    assert await store.claim("w", 0, LEASE) == []

    for order in orders:
        stored = await store.get(order.id)
        assert stored is not None
        assert stored.status is Status.QUEUED
        assert stored.attempts == 0


async def test_concurrent_claims_never_share_an_order(store: Store) -> None:
    orders = await submit_all(store, [make_new_order() for _ in range(50)])

    batches = await asyncio.gather(*(store.claim(f"w{n}", 15, LEASE) for n in range(5)))

    claimed = [lease.order.id for batch in batches for lease in batch]
    assert all(len(batch) <= 15 for batch in batches)
    assert sorted(claimed) == sorted(order.id for order in orders)


async def test_overdue_orders_come_first_oldest_first(store: Store) -> None:
    bulk = make_new_order("bulk", priority=5, max_wait=0.2)
    early = make_new_order("regular", max_wait=0.2)
    await submit_all(store, [bulk], chunk=1)
    await submit_all(store, [early], chunk=1)
    await asyncio.sleep(0.4)
    vip = make_new_order("vip")
    fresh = make_new_order("regular", max_wait=30.0)
    await submit_all(store, [vip, fresh], chunk=1)

    claimed = [lease.order.id for lease in await store.claim("w", 10, LEASE)]

    assert claimed == [bulk.id, early.id, vip.id, fresh.id]


async def test_an_order_is_not_overdue_before_its_max_wait(store: Store) -> None:
    patient = make_new_order("regular", max_wait=60.0)
    await submit_all(store, [patient], chunk=1)
    vip = make_new_order("vip")
    await submit_all(store, [vip], chunk=1)

    claimed = [lease.order.id for lease in await store.claim("w", 10, LEASE)]

    assert claimed == [vip.id, patient.id]
