"""The claim rule, the retry backoff and the percentile, as pure functions."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skipline.domain.models import Order, Status
from skipline.domain.scheduling import (
    claim_key,
    is_overdue,
    is_ready,
    percentile,
    pick_claims,
    retry_delay,
)

NOW = 1_700_000_000.0


def order(
    seq: int, priority: int = 1, status: Status = Status.QUEUED,
    overdue_at: float | None = None, available_at: float = 0.0,
) -> Order:
    return Order(
        id=f"order-{seq}", seq=seq, tier="t", priority=priority, status=status, attempts=0,
        rescues=0, payload=None, duration=0.0, owner="", created_at=NOW - 100,
        overdue_at=overdue_at, available_at=available_at,
    )


def seqs(orders: list[Order]) -> list[int]:
    return [o.seq for o in orders]


# --- overdue and ready ----------------------------------------------------------------------------
def test_an_order_is_overdue_from_its_overdue_time_on() -> None:
    assert not is_overdue(order(1, overdue_at=NOW + 0.001), NOW)
    assert is_overdue(order(1, overdue_at=NOW), NOW)
    assert is_overdue(order(1, overdue_at=NOW - 5), NOW)
    assert not is_overdue(order(1, overdue_at=None), NOW + 1e9)


def test_only_queued_orders_past_their_backoff_are_ready() -> None:
    assert is_ready(order(1, available_at=NOW), NOW)
    assert not is_ready(order(1, available_at=NOW + 1), NOW)
    for status in (Status.RUNNING, Status.SUCCEEDED, Status.FAILED, Status.CANCELLED):
        assert not is_ready(order(1, status=status), NOW)


# --- the claim rule -------------------------------------------------------------------------------
def test_claim_key_puts_overdue_first_then_priority_then_seq() -> None:
    overdue_old = order(1, priority=9, overdue_at=NOW - 1)
    overdue_new = order(5, priority=0, overdue_at=NOW - 1)
    vip = order(4, priority=0)
    regular = order(2, priority=1, overdue_at=NOW + 10)

    ranked = sorted([regular, vip, overdue_new, overdue_old], key=lambda o: claim_key(o, NOW))

    assert seqs(ranked) == [1, 5, 4, 2]


def test_claim_order_skips_what_is_not_ready() -> None:
    orders = [
        order(1, status=Status.RUNNING), order(2, available_at=NOW + 5),
        order(3, status=Status.CANCELLED), order(4), order(5, status=Status.SUCCEEDED),
    ]

    assert seqs(pick_claims(orders, NOW, 10)) == [4]


def test_claim_order_takes_at_most_limit() -> None:
    orders = [order(n) for n in range(1, 8)]

    assert seqs(pick_claims(orders, NOW, 3)) == [1, 2, 3]
    assert pick_claims(orders, NOW, 0) == []
    assert pick_claims(orders, NOW, -1) == []


def test_priority_beats_seq_until_an_order_is_overdue() -> None:
    orders = [order(1, priority=1, overdue_at=NOW + 1), order(2, priority=0)]

    assert seqs(pick_claims(orders, NOW, 2)) == [2, 1]
    assert seqs(pick_claims(orders, NOW + 1, 2)) == [1, 2]


def test_a_retry_waiting_order_keeps_its_place_once_ready() -> None:
    orders = [order(3), order(1, available_at=NOW + 2), order(2)]

    assert seqs(pick_claims(orders, NOW, 3)) == [2, 3]
    assert seqs(pick_claims(orders, NOW + 2, 3)) == [1, 2, 3]


orders_strategy = st.lists(
    st.builds(
        order,
        seq=st.integers(1, 10_000),
        priority=st.integers(0, 3),
        status=st.sampled_from(list(Status)),
        overdue_at=st.none() | st.floats(NOW - 10, NOW + 10),
        available_at=st.floats(NOW - 10, NOW + 10),
    ),
    unique_by=lambda o: o.seq,
    max_size=30,
)


@given(orders=orders_strategy, limit=st.integers(0, 40))
def test_claim_order_obeys_the_rule_for_any_queue(orders: list[Order], limit: int) -> None:
    claimed = pick_claims(orders, NOW, limit)

    ready = [o for o in orders if o.status is Status.QUEUED and o.available_at <= NOW]
    assert len(claimed) == min(limit, len(ready))
    assert all(o in ready for o in claimed)
    overdue = [o for o in claimed if o.overdue_at is not None and o.overdue_at <= NOW]
    assert claimed[: len(overdue)] == overdue, "an overdue order came after a timely one"
    assert seqs(overdue) == sorted(seqs(overdue)), "overdue orders go oldest first"
    timely = claimed[len(overdue):]
    assert [(o.priority, o.seq) for o in timely] == sorted((o.priority, o.seq) for o in timely)
    left = [o for o in ready if o not in claimed]
    if left and claimed:
        worst = claim_key(claimed[-1], NOW)
        assert all(claim_key(o, NOW) > worst for o in left), "a better order was left behind"


# --- retry backoff --------------------------------------------------------------------------------
def test_retry_delay_doubles_from_the_base() -> None:
    delays = [retry_delay(n, base=1.0, cap=1000.0, jitter=0.0) for n in range(1, 7)]

    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert retry_delay(0, base=3.0, jitter=0.0) == 3.0


def test_retry_delay_is_capped_even_after_very_many_attempts() -> None:
    assert retry_delay(10, base=1.0, cap=60.0, jitter=0.0) == 60.0
    assert retry_delay(10_000, base=1.0, cap=60.0, jitter=0.0) == 60.0


def test_retry_delay_jitter_stays_within_its_bounds() -> None:
    rng = random.Random(1234)

    delays = [retry_delay(4, base=1.0, cap=300.0, jitter=0.1, rng=rng) for _ in range(2000)]

    assert all(7.2 <= d <= 8.8 for d in delays)
    assert min(delays) < 7.4 and max(delays) > 8.6, "jitter should spread the delays"


def test_retry_delay_is_never_negative() -> None:
    rng = random.Random(5)

    assert all(retry_delay(1, base=0.5, jitter=1.0, rng=rng) >= 0 for _ in range(500))
    assert retry_delay(3, base=0.0) == 0.0


# --- percentile -----------------------------------------------------------------------------------
def test_percentile_of_nothing_is_none() -> None:
    assert percentile([], 0.5) is None


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [(0.0, 1.0), (0.01, 1.0), (0.5, 50.0), (0.99, 99.0), (0.995, 100.0), (1.0, 100.0)],
)
def test_percentile_is_nearest_rank(fraction: float, expected: float) -> None:
    values = [float(v) for v in range(100, 0, -1)]

    assert percentile(values, fraction) == expected


def test_percentile_of_one_value_is_that_value() -> None:
    assert percentile([2.5], 0.0) == 2.5
    assert percentile([2.5], 0.99) == 2.5
