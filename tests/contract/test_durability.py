"""Invariants 1 and 4: what a store acknowledged survives closing and reopening it — orders in
every status, their place in the queue, idempotency keys and API keys."""

from __future__ import annotations

import hashlib

import pytest

from skipline.domain.models import ApiKey, Order, OrderQuery, Status
from skipline.store.base import Store
from skipline.testing import claim_all, make_new_order, submit_all
from tests.contract.helpers import LEASE, StoreFactory, fetch

IDENTITY = ("id", "seq", "tier", "priority", "payload", "duration", "owner", "idempotency_key")
"""What a store may not change about an order, whatever happens to it."""
EVERY_FIELD = (*IDENTITY, "status", "attempts", "rescues", "result", "error")
TIMES = ("created_at", "started_at", "finished_at", "overdue_at")


def durable_only(factory: StoreFactory) -> None:
    if not factory.durable:
        pytest.skip(f"the {factory.name} store keeps nothing across close (invariant 1 exempts it)")


async def seed_every_status(store: Store) -> dict[str, Order]:
    """One order per status (and one waiting for a retry), by name; all but `queued` claimed."""
    names = ["succeeded", "failed", "running", "retrying", "queued", "cancelled"]
    news = [
        make_new_order("vip", payload={"name": name}, owner="alice", idempotency_key=name,
                       duration=0.5, max_wait=600.0)
        for name in names
    ]
    submitted = await submit_all(store, news, chunk=1)
    leases = await store.claim("w", 4, LEASE)
    assert await store.complete(leases[0].order.id, leases[0].token, {"answer": 42})
    await store.fail(leases[1].order.id, leases[1].token, "dead letter", None)
    await store.fail(leases[3].order.id, leases[3].token, "retry me", 120.0)
    await store.cancel(submitted[5].id)
    pairs = zip(names, submitted, strict=True)
    return {name: await fetch(store, order.id) for name, order in pairs}


def assert_same_order(
    after: Order, before: Order, fields: tuple[str, ...] = EVERY_FIELD,
) -> None:
    for name in fields:
        assert getattr(after, name) == getattr(before, name), name
    if fields is not EVERY_FIELD:
        return
    for name in TIMES:
        was, now = getattr(before, name), getattr(after, name)
        assert (was is None) == (now is None), name
        if was is not None:
            assert now == pytest.approx(was, abs=0.001), name


async def test_orders_in_every_status_survive_a_reopen(store_factory: StoreFactory) -> None:
    durable_only(store_factory)
    store = await store_factory.open()
    before = await seed_every_status(store)
    await store.close()

    reopened = await store_factory.open()

    for name, order in before.items():
        after = await fetch(reopened, order.id)
        if name == "running":
            assert after.status in (Status.RUNNING, Status.QUEUED), "a running order was lost"
            assert_same_order(after, order, IDENTITY)
        else:
            assert_same_order(after, order)
    listed = await reopened.list_orders(OrderQuery(owner="alice"))
    assert [order.id for order in listed] == [order.id for order in before.values()][::-1]


async def test_the_queue_keeps_its_order_across_a_reopen(store_factory: StoreFactory) -> None:
    durable_only(store_factory)
    store = await store_factory.open()
    older = await submit_all(store, [make_new_order("regular") for _ in range(3)], chunk=1)
    vip = await submit_all(store, [make_new_order("vip")])
    await store.close()

    reopened = await store_factory.open()
    (newer,) = await submit_all(reopened, [make_new_order("regular")])

    assert newer.seq > max(order.seq for order in older + vip), "a seq was reused"
    claimed = [lease.order.id for lease in await claim_all(reopened, batch=2)]
    assert claimed == [vip[0].id] + [order.id for order in older] + [newer.id]


async def test_idempotency_keys_survive_a_reopen(store_factory: StoreFactory) -> None:
    durable_only(store_factory)
    store = await store_factory.open()
    first, _ = await store.submit(make_new_order(owner="alice", idempotency_key="pay-1"))
    await store.close()

    reopened = await store_factory.open()
    again, created = await reopened.submit(make_new_order(owner="alice", idempotency_key="pay-1"))

    assert created is False
    assert again.id == first.id


async def test_api_keys_survive_a_reopen(store_factory: StoreFactory) -> None:
    durable_only(store_factory)
    store = await store_factory.open()
    keys = [
        ApiKey(name, tier, admin, hashlib.sha256(name.encode()).hexdigest(), 1_700_000_000.5)
        for name, tier, admin in [("alice", "vip", False), ("root", "regular", True)]
    ]
    for key in keys:
        await store.add_key(key)
    await store.revoke_key("root")
    await store.close()

    reopened = await store_factory.open()

    alice = await reopened.find_key(keys[0].key_hash)
    root = await reopened.find_key(keys[1].key_hash)
    assert alice is not None and root is not None
    assert (alice.name, alice.tier, alice.admin, alice.revoked) == ("alice", "vip", False, False)
    assert (root.name, root.tier, root.admin, root.revoked) == ("root", "regular", True, True)
    assert alice.created_at == pytest.approx(1_700_000_000.5, abs=0.001)
    assert {key.name for key in await reopened.list_keys()} == {"alice", "root"}


async def test_close_is_idempotent(store_factory: StoreFactory) -> None:
    store = await store_factory.open()
    await store.submit(make_new_order())

    await store.close()
    await store.close()

    reopened = await store_factory.open()
    expected = 1 if store_factory.durable else 0
    assert len(await reopened.list_orders(OrderQuery())) == expected
