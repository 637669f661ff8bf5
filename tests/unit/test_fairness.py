"""Start-time fair queuing as pure functions: start tags, steps by weight, a fifo tier as one
group, an idle group restarting at the virtual time, batches tagged in one go, the backlog a
group's position implies, and the claim key that orders by tag."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from skipline.domain.fairness import (
    MAX_WEIGHT,
    TAG_SCALE,
    GroupKey,
    advance,
    assign_tags,
    batch_turns,
    group_backlog,
    group_of,
    order_step,
    tag_step,
)
from skipline.domain.models import NewOrder, Order, Status
from skipline.domain.scheduling import claim_key
from skipline.testing import make_new_order

NOW = 1_700_000_000.0


def new(owner: str = "", customer: str = "", weight: int = 1, fifo: bool = False,
        tier: str = "regular") -> NewOrder:
    return make_new_order(tier, owner=owner, customer=customer, weight=weight, fifo=fifo)


def tags_from_scratch(news: list[NewOrder], clock: int = 0,
                      finishes: dict[GroupKey, int] | None = None,
                      ) -> tuple[list[int], dict[GroupKey, int]]:
    known = finishes or {}
    return assign_tags(news, lambda _: clock, lambda group: known.get(group, 0))


def test_weights_divide_the_scale_exactly_up_to_sixteen() -> None:
    for weight in range(1, 17):
        assert tag_step(weight) * weight == TAG_SCALE
    assert tag_step(0) == TAG_SCALE and tag_step(MAX_WEIGHT + 5) == tag_step(MAX_WEIGHT)


def test_a_busy_group_is_spaced_by_its_step_and_others_start_beside_it() -> None:
    tags, finishes = tags_from_scratch([new("a"), new("a"), new("b", weight=2), new("b", weight=2)])

    assert tags == [0, TAG_SCALE, 0, TAG_SCALE // 2]
    assert finishes == {("regular", "a", ""): 2 * TAG_SCALE, ("regular", "b", ""): TAG_SCALE}


def test_an_idle_group_restarts_at_the_virtual_time_with_no_credit() -> None:
    (tag,), finishes = tags_from_scratch([new("a")], clock=50 * TAG_SCALE,
                                         finishes={("regular", "a", ""): 3 * TAG_SCALE})

    assert tag == 50 * TAG_SCALE
    assert finishes[("regular", "a", "")] == 51 * TAG_SCALE


def test_a_group_ahead_of_the_virtual_time_keeps_its_place_in_line() -> None:
    (tag,), _ = tags_from_scratch([new("a")], clock=2 * TAG_SCALE,
                                  finishes={("regular", "a", ""): 9 * TAG_SCALE})

    assert tag == 9 * TAG_SCALE


def test_a_fifo_tier_is_one_group_stepping_one_turn_whatever_the_weight() -> None:
    orders = [new("a", fifo=True), new("b", weight=5, fifo=True), new("c", "x", fifo=True)]

    tags, finishes = tags_from_scratch(orders)

    assert {group_of(order) for order in orders} == {("regular", "", "")}
    assert tags == [0, TAG_SCALE, 2 * TAG_SCALE]
    assert order_step(orders[1]) == TAG_SCALE
    assert finishes == {("regular", "", ""): 3 * TAG_SCALE}


def test_customers_of_one_key_are_groups_of_their_own() -> None:
    assert group_of(new("shop", "x")) != group_of(new("shop", "y"))
    assert group_of(new("shop", "x")) != group_of(new("shop", "x", tier="vip"))


def test_the_state_is_asked_once_per_group_and_priority() -> None:
    asked: list[object] = []
    orders = [new("a"), new("a"), new("b"), new("a", tier="vip")]

    assign_tags(orders, lambda p: asked.append(p) or 0, lambda g: asked.append(g) or 0)

    assert sorted(map(str, asked)) == sorted(map(str, [
        ("regular", "a", ""), ("regular", "b", ""), ("vip", "a", ""), 1, 0]))


def test_the_virtual_time_only_moves_forward() -> None:
    clocks: dict[int, int] = {}
    advance(clocks, 1, 5)
    advance(clocks, 1, 3)
    advance(clocks, 0, 7)

    assert clocks == {1: 5, 0: 7}


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["vip", "regular"]),
                          st.booleans()),
                min_size=1, max_size=30), st.integers(0, 5), st.integers(0, 8))
def test_a_batch_tagged_in_one_go_matches_tagging_order_by_order(
    spec: list[tuple[str, str, bool]], clock_turns: int, finish_turns: int,
) -> None:
    """What the PostgreSQL statement computes from batch_turns equals assign_tags."""
    weights = {"a": 1, "b": 2, "c": 3}
    orders = [new(owner, weight=weights[owner], fifo=fifo, tier=tier)
              for owner, tier, fifo in spec]
    clock = clock_turns * TAG_SCALE
    known = {group_of(order): finish_turns * TAG_SCALE for order in orders[:1]}

    expected, _ = tags_from_scratch(orders, clock, known)
    ahead, group_steps = batch_turns(orders)

    got = []
    for order, before, steps in zip(orders, ahead, group_steps, strict=True):
        first = max(clock, known.get(group_of(order), 0))
        new_finish = first + steps
        got.append(new_finish - steps + before)
    assert got == expected


def test_the_backlog_is_the_groups_turns_the_virtual_time_has_not_reached() -> None:
    step = tag_step(4)
    assert group_backlog(10 * step, 10 * step, 4) == 0
    assert group_backlog(20 * step, 10 * step, 4) == 0
    assert group_backlog(7 * step, 10 * step, 4) == 3
    assert group_backlog(7 * step + 1, 10 * step, 4) == 3


def order(seq: int, start_tag: int, priority: int = 1, overdue_at: float | None = None) -> Order:
    return Order(
        id=f"o{seq}", seq=seq, tier="t", priority=priority, status=Status.QUEUED, attempts=0,
        rescues=0, payload=None, duration=0.0, owner="", created_at=NOW - 10,
        overdue_at=overdue_at, start_tag=start_tag,
    )


def test_the_claim_key_orders_by_priority_then_tag_then_seq_overdue_first() -> None:
    orders = [
        order(1, start_tag=5), order(2, start_tag=0), order(3, start_tag=0),
        order(4, start_tag=9, priority=0), order(5, start_tag=99, overdue_at=NOW - 1),
    ]

    ranked = sorted(orders, key=lambda o: claim_key(o, NOW))

    assert [o.seq for o in ranked] == [5, 4, 2, 3, 1]
