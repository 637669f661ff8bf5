"""An order submitted under an idempotency key keeps the fingerprint of the request that
submitted it, and every read gives it back, so the service can tell a retry (same request:
the first order, 200) from a reuse of the key for another request (422)."""

from __future__ import annotations

import pytest

from skipline.config import Settings
from skipline.domain.errors import IdempotencyKeyReused
from skipline.domain.models import ANONYMOUS, Caller, OrderQuery
from skipline.service import OrderService, OrderSpec
from skipline.store.base import Store
from skipline.testing import make_new_order
from tests.contract.helpers import LEASE, fetch

ALICE = Caller(name="alice", tier="vip")


async def test_the_fingerprint_is_stored_and_a_replay_returns_the_first_one(store: Store) -> None:
    first, created = await store.submit(
        make_new_order(owner="alice", idempotency_key="pay-1", fingerprint="f-1"))
    again, created_again = await store.submit(
        make_new_order(owner="alice", idempotency_key="pay-1", fingerprint="f-2"))

    assert (created, created_again) == (True, False)
    assert first.fingerprint == "f-1"
    assert again.id == first.id and again.fingerprint == "f-1"
    assert (await fetch(store, first.id)).fingerprint == "f-1"
    [listed] = await store.list_orders(OrderQuery(owner="alice"))
    assert listed.fingerprint == "f-1"
    [lease] = await store.claim("w", 1, LEASE)
    assert lease.order.fingerprint == "f-1"


async def test_an_order_without_a_key_has_no_fingerprint(store: Store) -> None:
    order, _ = await store.submit(make_new_order(owner="alice"))
    assert order.fingerprint is None and (await fetch(store, order.id)).fingerprint is None


async def test_a_retry_of_the_same_request_is_the_first_order(store: Store) -> None:
    service = OrderService(store, Settings())
    first, created = await service.submit(ALICE, OrderSpec(
        payload={"a": 1, "b": [1, 2]}, duration=0.5, idempotency_key="k"))
    again, created_again = await service.submit(ALICE, OrderSpec(
        payload={"b": [1, 2], "a": 1}, duration=0.5, tier="vip", idempotency_key="k"))

    assert (created, created_again) == (True, False)
    assert again.id == first.id


@pytest.mark.parametrize("changed", [
    OrderSpec(payload={"a": 2}, duration=0.5, idempotency_key="k"),
    OrderSpec(payload={"a": 1}, duration=0.6, idempotency_key="k"),
    OrderSpec(payload={"a": 1}, duration=0.5, tier="regular", idempotency_key="k"),
])
async def test_the_same_key_with_another_request_is_refused(
    store: Store, changed: OrderSpec,
) -> None:
    service = OrderService(store, Settings())
    first, _ = await service.submit(ALICE, OrderSpec(
        payload={"a": 1}, duration=0.5, idempotency_key="k"))

    with pytest.raises(IdempotencyKeyReused) as refused:
        await service.submit(ALICE, changed)
    assert first.id not in refused.value.detail  # it would let a guesser read the order
    assert len(await store.list_orders(OrderQuery(owner="alice"))) == 1


async def test_anonymous_callers_share_keys_but_not_requests(store: Store) -> None:
    service = OrderService(store, Settings())
    mine, _ = await service.submit(ANONYMOUS, OrderSpec(payload={"secret": 1},
                                                         idempotency_key="guessable"))
    with pytest.raises(IdempotencyKeyReused):
        await service.submit(ANONYMOUS, OrderSpec(payload={}, idempotency_key="guessable"))
    same, created = await service.submit(
        ANONYMOUS, OrderSpec(payload={"secret": 1}, idempotency_key="guessable"))
    assert (same.id, created) == (mine.id, False)
