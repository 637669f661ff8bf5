"""Invariant 2, inside a tier: fair-share groups (a key, or a key's customer) share the slots
in proportion to their weights, FIFO inside a group; an idle group joins at the current
position; a retried, released or rescued order keeps its place; a `fifo` tier is one line."""

from __future__ import annotations

import asyncio

from skipline.domain.fairness import TAG_SCALE, group_backlog, tag_step
from skipline.domain.models import NewOrder, OrderQuery
from skipline.store.base import Store
from skipline.testing import claim_all, make_new_order, submit_all

from .helpers import LEASE, PAST_SHORT_LEASE, SHORT_LEASE


def orders_of(
    owner: str, count: int, *, customer: str = "", weight: int = 1, fifo: bool = False,
    tier: str = "regular",
) -> list[NewOrder]:
    return [
        make_new_order(
            tier, owner=owner, customer=customer, weight=weight, fifo=fifo,
            payload={"who": f"{owner}/{customer}", "n": n},
        )
        for n in range(count)
    ]


def who(store_ids: list[str], news: list[NewOrder]) -> list[str]:
    """Each claimed order as 'group#n' (its place inside its group)."""
    label = {
        new.id: f"{new.payload['who']}#{new.payload['n']}" for new in news
    }
    return [label[order_id] for order_id in store_ids]


async def claimed_ids(store: Store, batch: int = 1) -> list[str]:
    return [lease.order.id for lease in await claim_all(store, batch=batch)]


async def test_busy_groups_alternate_and_each_keeps_its_own_order(store: Store) -> None:
    heavy = orders_of("a", 6)
    shop_x = orders_of("shop", 3, customer="x")
    shop_y = orders_of("shop", 3, customer="y")
    await submit_all(store, heavy + shop_x + shop_y, chunk=1)

    claimed = who(await claimed_ids(store), heavy + shop_x + shop_y)

    assert claimed == [
        "a/#0", "shop/x#0", "shop/y#0", "a/#1", "shop/x#1", "shop/y#1",
        "a/#2", "shop/x#2", "shop/y#2", "a/#3", "a/#4", "a/#5",
    ]


async def test_a_batch_claim_follows_the_same_alternation(store: Store) -> None:
    heavy = orders_of("a", 4)
    light = orders_of("b", 2)
    await submit_all(store, heavy + light)

    claimed = who(await claimed_ids(store, batch=4), heavy + light)

    assert claimed == ["a/#0", "b/#0", "a/#1", "b/#1", "a/#2", "a/#3"]


async def test_groups_share_in_proportion_to_their_weights(store: Store) -> None:
    double = orders_of("gold", 6, weight=2)
    single = orders_of("tin", 6, weight=1)
    await submit_all(store, double + single, chunk=1)

    claimed = who(await claimed_ids(store), double + single)

    assert claimed == [
        "gold/#0", "tin/#0", "gold/#1", "gold/#2", "tin/#1", "gold/#3",
        "gold/#4", "tin/#2", "gold/#5", "tin/#3", "tin/#4", "tin/#5",
    ]
    first_nine = claimed[:9]
    assert sum(c.startswith("gold") for c in first_nine) == 6


async def test_an_idle_group_joins_at_the_current_position_without_a_burst(
    store: Store,
) -> None:
    heavy = orders_of("a", 10)
    await submit_all(store, heavy, chunk=1)
    first = await store.claim("w", 5, LEASE)
    late = orders_of("b", 3)
    await submit_all(store, late, chunk=1)

    claimed = who(await claimed_ids(store), heavy + late)

    assert [lease.order.id for lease in first] == [new.id for new in heavy[:5]]
    assert claimed == ["b/#0", "a/#5", "b/#1", "a/#6", "b/#2", "a/#7", "a/#8", "a/#9"]


async def test_a_group_that_was_served_alone_has_no_debt_when_others_come(
    store: Store,
) -> None:
    alone = orders_of("a", 5)
    await submit_all(store, alone, chunk=1)
    assert len(await claim_all(store)) == 5
    later_a = orders_of("a", 2)
    newcomer = orders_of("b", 2)
    await submit_all(store, later_a + newcomer, chunk=1)

    claimed = who(await claimed_ids(store), later_a + newcomer)

    assert claimed == ["b/#0", "a/#0", "b/#1", "a/#1"]


async def test_retried_and_released_orders_keep_their_place(store: Store) -> None:
    a = orders_of("a", 3)
    b = orders_of("b", 3)
    await submit_all(store, a + b, chunk=1)
    first_a, first_b = await store.claim("w", 2, LEASE)
    assert await store.release([(first_a.order.id, first_a.token)]) == 1
    assert await store.fail(first_b.order.id, first_b.token, "boom", retry_delay=0.0)

    claimed = who(await claimed_ids(store), a + b)

    assert claimed == ["a/#0", "b/#0", "a/#1", "b/#1", "a/#2", "b/#2"]


async def test_a_rescued_order_keeps_its_place(store: Store) -> None:
    a = orders_of("a", 2)
    b = orders_of("b", 2)
    await submit_all(store, a + b, chunk=1)
    (lost,) = await store.claim("w", 1, SHORT_LEASE)
    await asyncio.sleep(PAST_SHORT_LEASE)
    assert await store.rescue_expired(max_rescues=3) == 1

    claimed = who(await claimed_ids(store), a + b)

    assert lost.order.id == a[0].id
    assert claimed == ["a/#0", "b/#0", "a/#1", "b/#1"]


async def test_a_fifo_tier_is_one_line_whoever_submits(store: Store) -> None:
    a = orders_of("a", 3, fifo=True)
    b = orders_of("b", 3, fifo=True, weight=5)
    c = orders_of("shop", 2, customer="x", fifo=True)
    await submit_all(store, a + b + c, chunk=1)

    claimed = await claimed_ids(store)

    assert claimed == [new.id for new in a + b + c]


async def test_priority_still_comes_before_the_groups_turns(store: Store) -> None:
    regular = orders_of("a", 2) + orders_of("b", 2)
    await submit_all(store, regular, chunk=1)
    vip = orders_of("v", 2, tier="vip")
    await submit_all(store, vip, chunk=1)

    claimed = who(await claimed_ids(store), regular + vip)

    assert claimed == ["v/#0", "v/#1", "a/#0", "b/#0", "a/#1", "b/#1"]


async def test_a_replayed_submission_takes_no_turn(store: Store) -> None:
    keyed = make_new_order(owner="a", idempotency_key="k", payload={"who": "a/", "n": 0})
    await store.submit(keyed)
    replay = make_new_order(owner="a", idempotency_key="k", payload={"who": "a/", "n": 9})
    assert (await store.submit(replay))[1] is False
    a = orders_of("a", 1)
    b = orders_of("b", 2)
    await submit_all(store, a + b, chunk=1)

    position = await store.fair_position(1, ("regular", "a", ""))

    assert position == (0, 2 * TAG_SCALE)


async def test_the_fair_position_counts_a_groups_backlog(store: Store) -> None:
    assert await store.fair_position(1, ("regular", "a", "")) == (0, 0)
    await submit_all(store, orders_of("a", 4, weight=4) + orders_of("b", 1), chunk=1)
    await store.claim("w", 3, LEASE)

    virtual_time, finish = await store.fair_position(1, ("regular", "a", ""))

    step = tag_step(4)
    assert (virtual_time, finish) == (step, 4 * step)
    assert group_backlog(virtual_time, finish, 4) == 3
    assert await store.fair_position(0, ("vip", "a", "")) == (0, 0)


async def test_orders_show_their_customer_and_list_by_it(store: Store) -> None:
    x = orders_of("shop", 2, customer="x")
    y = orders_of("shop", 1, customer="y")
    await submit_all(store, x + y, chunk=1)

    stored = await store.get(x[0].id)
    listed = await store.list_orders(OrderQuery(owner="shop", customer="x"))
    (lease, *_) = await store.claim("w", 3, LEASE)

    assert stored is not None and stored.customer == "x"
    assert [o.id for o in listed] == [x[1].id, x[0].id]
    assert lease.order.customer == "x"
