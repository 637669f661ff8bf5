"""Accepting, reading, cancelling and listing orders; idempotent submission (invariant 8)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from skipline.domain.errors import OrderNotCancellable, OrderNotFound
from skipline.domain.models import OrderQuery, Status
from skipline.store.base import Store
from skipline.testing import make_new_order, submit_all
from tests.contract.helpers import LEASE, fetch

PAYLOADS: list[Any] = [
    None,
    {},
    {"user_type": "vip", "items": [1, 2.5, "é ✓", None, True, {"nested": []}]},
    [1, "two"],
    "just a string",
    12345678901234,
]


async def test_a_submitted_order_is_queued_and_reads_back_whole(store: Store) -> None:
    new = make_new_order(
        "vip", payload={"a": [1, 2]}, duration=1.5, owner="alice", idempotency_key="k-1",
    )

    order, created = await store.submit(new)

    assert created is True
    stored = await fetch(store, new.id)
    for seen in (order, stored):
        assert (seen.id, seen.tier, seen.priority, seen.owner) == (new.id, "vip", 0, "alice")
        assert seen.status is Status.QUEUED
        assert (seen.attempts, seen.rescues) == (0, 0)
        assert seen.payload == {"a": [1, 2]}
        assert seen.duration == 1.5
        assert seen.idempotency_key == "k-1"
        assert seen.started_at is None and seen.finished_at is None
        assert seen.result is None and seen.error is None
    assert stored.seq == order.seq
    assert stored.created_at == pytest.approx(order.created_at, abs=0.001)


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_payloads_and_results_round_trip_as_json(store: Store, payload: Any) -> None:
    order, _ = await store.submit(make_new_order(payload=payload))
    (lease,) = await store.claim("w", 1, LEASE)

    await store.complete(order.id, lease.token, payload)

    done = await fetch(store, order.id)
    assert done.payload == payload
    assert done.result == payload


async def test_an_unknown_order_is_none(store: Store) -> None:
    assert await store.get("00000000-0000-4000-8000-000000000000") is None


async def test_sequences_grow_with_acceptance(store: Store) -> None:
    orders = await submit_all(store, [make_new_order() for _ in range(5)], chunk=1)

    seqs = [order.seq for order in orders]

    assert seqs == sorted(seqs) and len(set(seqs)) == 5


# --- cancel ---------------------------------------------------------------------------------------
async def test_cancelling_a_queued_order_means_it_is_never_claimed(store: Store) -> None:
    doomed, kept = await submit_all(store, [make_new_order("vip"), make_new_order()], chunk=1)

    cancelled = await store.cancel(doomed.id)

    assert cancelled.status is Status.CANCELLED
    assert (await fetch(store, doomed.id)).status is Status.CANCELLED
    assert [lease.order.id for lease in await store.claim("w", 10, LEASE)] == [kept.id]


async def test_an_order_waiting_for_a_retry_can_be_cancelled(store: Store) -> None:
    order, _ = await store.submit(make_new_order())
    (lease,) = await store.claim("w", 1, LEASE)
    await store.fail(order.id, lease.token, "boom", retry_delay=0.2)

    await store.cancel(order.id)
    await asyncio.sleep(0.3)

    assert await store.claim("w", 1, LEASE) == []
    assert (await fetch(store, order.id)).status is Status.CANCELLED


async def test_cancelling_a_started_or_finished_order_is_refused(store: Store) -> None:
    running, succeeded, failed, cancelled = await submit_all(
        store, [make_new_order() for _ in range(4)], chunk=1,
    )
    leases = await store.claim("w", 3, LEASE)
    await store.complete(succeeded.id, leases[1].token, None)
    await store.fail(failed.id, leases[2].token, "no", None)
    await store.cancel(cancelled.id)

    for order, status in [
        (running, Status.RUNNING), (succeeded, Status.SUCCEEDED),
        (failed, Status.FAILED), (cancelled, Status.CANCELLED),
    ]:
        with pytest.raises(OrderNotCancellable):
            await store.cancel(order.id)
        assert (await fetch(store, order.id)).status is status


async def test_cancelling_an_unknown_order_is_not_found(store: Store) -> None:
    with pytest.raises(OrderNotFound):
        await store.cancel("00000000-0000-4000-8000-000000000000")


# --- idempotency ----------------------------------------------------------------------------------
async def test_the_same_key_from_the_same_owner_returns_the_first_order(store: Store) -> None:
    first, created = await store.submit(
        make_new_order(owner="alice", idempotency_key="pay-42", payload={"try": 1}),
    )
    again, created_again = await store.submit(
        make_new_order(owner="alice", idempotency_key="pay-42", payload={"try": 2}),
    )

    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert again.payload == {"try": 1}
    assert len(await store.list_orders(OrderQuery(owner="alice"))) == 1


async def test_the_same_key_from_another_owner_is_another_order(store: Store) -> None:
    alice, _ = await store.submit(make_new_order(owner="alice", idempotency_key="k"))
    bob, bob_created = await store.submit(make_new_order(owner="bob", idempotency_key="k"))
    anonymous, anonymous_created = await store.submit(make_new_order(idempotency_key="k"))

    assert bob_created and anonymous_created
    assert len({alice.id, bob.id, anonymous.id}) == 3


async def test_orders_without_a_key_are_never_merged(store: Store) -> None:
    orders = await submit_all(store, [make_new_order(owner="alice") for _ in range(3)])

    assert len({order.id for order in orders}) == 3


async def test_concurrent_retries_with_one_key_create_one_order(store: Store) -> None:
    news = [make_new_order(owner="alice", idempotency_key="race") for _ in range(10)]

    results = await asyncio.gather(*(store.submit(new) for new in news))

    assert sum(created for _, created in results) == 1
    assert len({order.id for order, _ in results}) == 1
    assert len(await store.list_orders(OrderQuery(owner="alice"))) == 1


async def test_a_key_still_returns_its_order_after_it_finished(store: Store) -> None:
    first, _ = await store.submit(make_new_order(owner="alice", idempotency_key="k"))
    (lease,) = await store.claim("w", 1, LEASE)
    await store.complete(first.id, lease.token, {"done": True})

    again, created = await store.submit(make_new_order(owner="alice", idempotency_key="k"))

    assert created is False
    assert again.id == first.id
    assert again.status is Status.SUCCEEDED


# --- listing --------------------------------------------------------------------------------------
async def seed_for_listing(store: Store) -> list[str]:
    """Six orders in submission order: alice vip, bob regular, alice regular (running),
    bob vip, alice regular (succeeded), alice regular."""
    specs = [("alice", "vip"), ("bob", "regular"), ("alice", "regular"),
             ("bob", "vip"), ("alice", "regular"), ("alice", "regular")]
    orders = await submit_all(
        store, [make_new_order(tier, owner=owner) for owner, tier in specs], chunk=1,
    )
    ids = [order.id for order in orders]
    leases = {lease.order.id: lease for lease in await store.claim("w", 10, LEASE)}
    assert await store.complete(ids[4], leases[ids[4]].token, None)
    others = [(i, lease.token) for i, lease in leases.items() if i not in (ids[2], ids[4])]
    assert await store.release(others) == 4
    return ids


async def listed(store: Store, **query: Any) -> list[str]:
    return [order.id for order in await store.list_orders(OrderQuery(**query))]


async def test_listing_is_newest_first_and_filters(store: Store) -> None:
    ids = await seed_for_listing(store)

    assert await listed(store) == ids[::-1]
    assert await listed(store, owner="alice") == [ids[5], ids[4], ids[2], ids[0]]
    assert await listed(store, owner="bob", tier="vip") == [ids[3]]
    assert await listed(store, tier="regular") == [ids[5], ids[4], ids[2], ids[1]]
    assert await listed(store, status=Status.RUNNING) == [ids[2]]
    assert await listed(store, owner="alice", status=Status.QUEUED) == [ids[5], ids[0]]
    assert await listed(store, owner="carol") == []
    assert await listed(store, limit=2) == [ids[5], ids[4]]


async def test_listing_pages_with_before_seq(store: Store) -> None:
    await seed_for_listing(store)
    everything = await store.list_orders(OrderQuery())

    pages: list[list[str]] = []
    cursor = None
    while page := await store.list_orders(OrderQuery(limit=4, before_seq=cursor)):
        assert len(page) <= 4
        pages.append([order.id for order in page])
        cursor = page[-1].seq

    assert [len(page) for page in pages] == [4, 2]
    assert [i for page in pages for i in page] == [order.id for order in everything]
    cursor = everything[1].seq
    owned = await store.list_orders(OrderQuery(owner="alice", limit=2, before_seq=cursor))
    assert [order.owner for order in owned] == ["alice", "alice"]
    assert all(order.seq < cursor for order in owned)
