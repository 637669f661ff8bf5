"""OrderService's rules (invariant 6 and admission control), over the in-memory store."""

from __future__ import annotations

import pytest

from skipline.auth import hash_secret
from skipline.clock import FakeClock
from skipline.config import Settings
from skipline.domain.errors import (
    IdempotencyKeyReused,
    InvalidApiKey,
    InvalidKeyName,
    InvalidOrder,
    NotAuthenticated,
    OrderNotFound,
    QueueFull,
    ShuttingDown,
    TierNotAllowed,
)
from skipline.domain.models import ANONYMOUS, Caller, Status, Tier
from skipline.service import OrderService, OrderSpec
from skipline.store.memory import MemoryStore

TIERS = {
    "vip": Tier("vip", 0),
    "regular": Tier("regular", 1, max_wait=300.0),
    "bulk": Tier("bulk", 5, max_wait=3600.0, max_queued=2),
}
ALICE = Caller("alice", "regular")
BOB = Caller("bob", "regular")
ROOT = Caller("root", "vip", admin=True)


async def make_service(**overrides: object) -> OrderService:
    store = MemoryStore(FakeClock())
    await store.open()
    settings = Settings(tiers=TIERS, **overrides)  # type: ignore[arg-type]
    return OrderService(store, settings, FakeClock())


# --- choose_tier ----------------------------------------------------------------------------------
async def test_a_caller_gets_its_own_tier_by_default() -> None:
    service = await make_service()

    assert service.choose_tier(ALICE, None) == "regular"
    assert service.choose_tier(ALICE, "regular") == "regular"
    assert service.choose_tier(ANONYMOUS, None) == "regular"
    assert service.choose_tier(ROOT, None) == "vip"


async def test_asking_for_a_better_tier_is_not_allowed() -> None:
    service = await make_service()

    with pytest.raises(TierNotAllowed, match=r"'alice'.*'vip'"):
        service.choose_tier(ALICE, "vip")
    with pytest.raises(TierNotAllowed, match="anonymous"):
        service.choose_tier(ANONYMOUS, "vip")


async def test_asking_for_a_worse_tier_is_allowed() -> None:
    service = await make_service()

    assert service.choose_tier(ALICE, "bulk") == "bulk"
    assert service.choose_tier(ROOT, "regular") == "regular"


async def test_an_unknown_tier_is_invalid_and_the_known_ones_are_listed() -> None:
    service = await make_service()

    with pytest.raises(InvalidOrder, match=r"'gold'.*bulk, regular, vip"):
        service.choose_tier(ALICE, "gold")


# --- submit ---------------------------------------------------------------------------------------
async def test_an_order_takes_priority_and_max_wait_from_its_tier() -> None:
    service = await make_service()

    order, created = await service.submit(ALICE, OrderSpec(payload={"x": 1}, tier="bulk"))

    assert created
    assert (order.tier, order.priority, order.owner) == ("bulk", 5, "alice")
    assert order.overdue_at == pytest.approx(order.created_at + 3600.0)
    assert order.status is Status.QUEUED


async def test_library_code_submits_in_one_call_with_any_tier() -> None:
    service = await make_service()

    order = await service.submit_order(payload={"sku": 1}, tier="vip", duration=0.5,
                                       idempotency_key="buy-1")
    again = await service.submit_order(payload={"sku": 1}, tier="vip", duration=0.5,
                                       idempotency_key="buy-1")
    with pytest.raises(IdempotencyKeyReused):
        await service.submit_order(payload={"sku": 2}, tier="vip", idempotency_key="buy-1")
    plain = await service.submit_order()

    assert (order.tier, order.priority, order.owner, order.payload) == ("vip", 0, "", {"sku": 1})
    assert order.duration == 0.5 and order.status == "queued"
    assert again.id == order.id
    assert (plain.tier, plain.payload) == ("regular", None)
    with pytest.raises(InvalidOrder, match="'gold'"):
        await service.submit_order(tier="gold")
    service.accepting = False
    with pytest.raises(ShuttingDown):
        await service.submit_order()


@pytest.mark.parametrize("duration", [-0.1, 3600.5])
async def test_a_duration_out_of_range_is_invalid(duration: float) -> None:
    service = await make_service()

    with pytest.raises(InvalidOrder, match="duration"):
        await service.submit(ALICE, OrderSpec(duration=duration))


async def test_an_idempotent_retry_returns_the_first_order() -> None:
    service = await make_service()
    first, _ = await service.submit(ALICE, OrderSpec(idempotency_key="k"))

    again, created = await service.submit(ALICE, OrderSpec(idempotency_key="k"))

    assert not created and again.id == first.id


async def test_a_full_tier_refuses_with_a_retry_after() -> None:
    service = await make_service()
    for _ in range(2):
        await service.submit(ALICE, OrderSpec(tier="bulk"))

    with pytest.raises(QueueFull, match="'bulk'") as caught:
        await service.submit(ALICE, OrderSpec(tier="bulk"))

    assert 1.0 <= caught.value.retry_after <= 60.0
    await service.submit(ALICE, OrderSpec())


async def test_a_global_cap_counts_every_tier() -> None:
    service = await make_service(max_queued=3)
    await service.submit(ALICE, OrderSpec())
    await service.submit(ROOT, OrderSpec())
    await service.submit(ALICE, OrderSpec(tier="bulk"))

    with pytest.raises(QueueFull):
        await service.submit(ROOT, OrderSpec())


async def test_a_draining_service_accepts_nothing() -> None:
    service = await make_service()
    service.accepting = False

    with pytest.raises(ShuttingDown):
        await service.submit(ALICE, OrderSpec())


# --- identity and visibility ----------------------------------------------------------------------
async def test_a_key_authenticates_as_its_caller() -> None:
    service = await make_service()
    secret = await service.add_key("alice", "regular")

    caller = await service.authenticate(secret)

    assert caller == ALICE
    assert (await service.store.find_key(hash_secret(secret))) is not None
    assert all(secret not in key.key_hash for key in await service.store.list_keys())


async def test_unknown_or_revoked_keys_are_refused() -> None:
    service = await make_service()
    secret = await service.add_key("alice", "regular")
    await service.store.revoke_key("alice")

    with pytest.raises(InvalidApiKey):
        await service.authenticate(secret)
    with pytest.raises(InvalidApiKey):
        await service.authenticate("sk_made_up")


async def test_anonymous_callers_can_be_turned_off() -> None:
    assert await (await make_service()).authenticate(None) == ANONYMOUS
    with pytest.raises(NotAuthenticated):
        await (await make_service(allow_anonymous=False)).authenticate(None)


async def test_a_key_for_an_unknown_tier_cannot_be_made() -> None:
    service = await make_service()

    with pytest.raises(InvalidOrder, match="'gold'"):
        await service.add_key("alice", "gold")


@pytest.mark.parametrize("name", ["", "x" * 65, "tab\there"])
async def test_a_key_with_a_bad_name_cannot_be_made(name: str) -> None:
    service = await make_service()

    with pytest.raises(InvalidKeyName, match="1 to 64 printable"):
        await service.add_key(name, "regular")


async def test_another_callers_order_is_not_found_but_an_admin_sees_it() -> None:
    service = await make_service()
    order, _ = await service.submit(ALICE, OrderSpec())

    with pytest.raises(OrderNotFound):
        await service.get(BOB, order.id)
    with pytest.raises(OrderNotFound):
        await service.cancel(BOB, order.id)
    assert (await service.get(ROOT, order.id)).id == order.id
    assert (await service.get(ALICE, order.id)).id == order.id


async def test_an_anonymous_order_is_readable_by_whoever_holds_its_id() -> None:
    service = await make_service()
    order, _ = await service.submit(ANONYMOUS, OrderSpec())

    assert (await service.get(BOB, order.id)).id == order.id


async def test_listing_needs_a_key_and_shows_only_ones_own_orders() -> None:
    service = await make_service()
    mine, _ = await service.submit(ALICE, OrderSpec())
    await service.submit(BOB, OrderSpec())

    with pytest.raises(NotAuthenticated):
        await service.list_orders(ANONYMOUS)
    assert [o.id for o in await service.list_orders(ALICE)] == [mine.id]
    assert len(await service.list_orders(ROOT)) == 2
