"""Callback deliveries in the store: the write that makes an order with a callback_url final
makes its delivery pending (same transaction); the delivery service claims due deliveries and
records each attempt."""

from __future__ import annotations

import asyncio

from msgspec.structs import replace

from skipline.domain.models import Status
from skipline.store.base import Store
from skipline.testing import make_new_order
from tests.contract.helpers import LEASE, PAST_SHORT_LEASE, SHORT_LEASE

URL = "https://hooks.example.com/done"

async def _submitted(store: Store, url: str | None = URL) -> str:
    order, _ = await store.submit(replace(make_new_order(), callback_url=url))
    assert order.callback_url == url
    return order.id

async def test_every_way_of_finishing_makes_the_delivery_pending(store: Store) -> None:
    succeeded, failed, cancelled, poisoned = [await _submitted(store) for _ in range(4)]
    await store.cancel(cancelled)
    leases = {lease.order.id: lease for lease in await store.claim("w", 2, LEASE)}
    assert await store.complete(succeeded, leases[succeeded].token, {"ok": 1})
    await store.fail(failed, leases[failed].token, "boom", None)
    await store.claim("w", 1, SHORT_LEASE)
    await asyncio.sleep(PAST_SHORT_LEASE)
    await store.rescue_expired(0)

    found = await store.deliveries([succeeded, failed, cancelled, poisoned])

    assert set(found) == {succeeded, failed, cancelled, poisoned}
    assert {(d.url, d.status, d.attempts) for d in found.values()} == {(URL, "pending", 0)}

async def test_no_delivery_before_the_order_is_final_nor_without_a_callback(store: Store) -> None:
    waiting = await _submitted(store)
    plain = await _submitted(store, None)
    await store.cancel(plain)
    (lease,) = await store.claim("w", 1, LEASE)
    await store.fail(waiting, lease.token, "again", 30.0)

    assert await store.deliveries([waiting, plain]) == {}
    assert await store.claim_deliveries(10, 30.0) == []

async def test_claimed_deliveries_are_put_off_then_recorded(store: Store) -> None:
    first, second = await _submitted(store), await _submitted(store)
    await store.cancel(first)
    await store.cancel(second)

    claimed = await store.claim_deliveries(10, 30.0)
    assert [d.order_id for d in claimed] == [first, second]
    assert await store.claim_deliveries(10, 30.0) == [], "put off while being tried"

    await store.record_delivery(first, None, None)
    await store.record_delivery(second, "HTTP 500", 0.0)
    found = await store.deliveries([first, second])
    assert (found[first].status, found[first].attempts, found[first].last_error) == (
        "delivered", 1, None)
    assert (found[second].status, found[second].attempts, found[second].last_error) == (
        "pending", 1, "HTTP 500")

    [again] = await store.claim_deliveries(10, 30.0)
    assert again.order_id == second
    await store.record_delivery(second, "timed out", None)
    assert (await store.deliveries([second]))[second].status == "failed"
    assert await store.claim_deliveries(10, 30.0) == []

async def test_a_requeued_order_delivers_again_when_it_finishes_again(store: Store) -> None:
    order_id = await _submitted(store)
    await store.cancel(order_id)
    [claimed] = await store.claim_deliveries(1, 30.0)
    await store.record_delivery(order_id, None, None)
    await store.requeue(order_id)
    (lease,) = await store.claim("w", 1, LEASE)
    await store.complete(order_id, lease.token, None)

    delivery = (await store.deliveries([order_id]))[order_id]

    assert (delivery.status, delivery.attempts) == ("pending", 0)
    assert (await store.get(order_id)).status is Status.SUCCEEDED  # type: ignore[union-attr]
    assert claimed.order_id == order_id

async def test_retention_deletes_the_delivery_with_its_order(store: Store) -> None:
    order_id = await _submitted(store)
    await store.cancel(order_id)
    await asyncio.sleep(0.05)

    assert await store.prune_finished(0.0, 10) == 1

    assert await store.deliveries([order_id]) == {}
