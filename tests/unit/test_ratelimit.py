"""Token buckets, driven by explicit times: a burst passes, the next request is told how long
to wait, the budget refills at the rate, callers never share a budget, and idle buckets are
forgotten without losing any caller's state."""

from __future__ import annotations

import pytest

from skipline.domain.ratelimit import FIRST_SWEEP, RateLimit, RateLimiter

TWO_PER_SECOND = RateLimit(rate=2.0, burst=3)


def test_a_burst_passes_then_the_next_request_is_told_when_to_come_back() -> None:
    limiter = RateLimiter()

    assert [limiter.take("a", TWO_PER_SECOND, 100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", TWO_PER_SECOND, 100.0) == pytest.approx(0.5)


def test_a_refused_request_takes_nothing_from_the_budget() -> None:
    limiter = RateLimiter()
    for _ in range(3):
        limiter.take("a", TWO_PER_SECOND, 100.0)

    for _ in range(10):
        assert limiter.take("a", TWO_PER_SECOND, 100.0) == pytest.approx(0.5)
    assert limiter.take("a", TWO_PER_SECOND, 100.5) == 0.0


def test_the_budget_refills_at_the_rate_up_to_the_burst() -> None:
    limiter = RateLimiter()
    for _ in range(3):
        limiter.take("a", TWO_PER_SECOND, 100.0)

    assert limiter.take("a", TWO_PER_SECOND, 100.25) == pytest.approx(0.25)
    assert limiter.take("a", TWO_PER_SECOND, 101.0) == 0.0  # 2 tokens back; one taken
    assert limiter.take("a", TWO_PER_SECOND, 101.0) == 0.0
    assert limiter.take("a", TWO_PER_SECOND, 101.0) > 0
    # A long pause refills only up to the burst.
    assert [limiter.take("a", TWO_PER_SECOND, 1000.0) for _ in range(4)][-1] > 0


def test_callers_have_their_own_budgets() -> None:
    limiter = RateLimiter()
    for _ in range(3):
        limiter.take("a", TWO_PER_SECOND, 100.0)

    assert limiter.take("a", TWO_PER_SECOND, 100.0) > 0
    assert limiter.take("b", TWO_PER_SECOND, 100.0) == 0.0


def test_a_clock_that_steps_back_neither_refills_nor_crashes() -> None:
    limiter = RateLimiter()
    for _ in range(3):
        limiter.take("a", TWO_PER_SECOND, 100.0)

    assert limiter.take("a", TWO_PER_SECOND, 50.0) == pytest.approx(0.5)


def test_a_changed_limit_starts_a_fresh_bucket() -> None:
    limiter = RateLimiter()
    for _ in range(3):
        limiter.take("a", TWO_PER_SECOND, 100.0)

    assert limiter.take("a", RateLimit(rate=2.0, burst=5), 100.0) == 0.0


def test_idle_buckets_are_forgotten_and_busy_ones_kept() -> None:
    limiter = RateLimiter()
    one_per_second = RateLimit(rate=1.0, burst=1)
    limiter.take("busy", one_per_second, 0.0)
    for number in range(FIRST_SWEEP - 1):
        limiter.take(f"idle-{number}", one_per_second, 0.0)
    assert len(limiter) == FIRST_SWEEP  # the next new caller triggers a sweep

    # Ten seconds later every bucket has refilled except the one just used again.
    limiter.take("busy", one_per_second, 10.0)
    limiter.take("newcomer", one_per_second, 10.0)

    assert len(limiter) == 2
    assert limiter.take("busy", one_per_second, 10.0) == pytest.approx(1.0)
    assert limiter.take("newcomer", one_per_second, 10.0) == pytest.approx(1.0)


def test_memory_stays_bounded_by_recently_active_callers() -> None:
    limiter = RateLimiter()
    limit = RateLimit(rate=100.0, burst=1)
    for step in range(50_000):
        limiter.take(f"caller-{step}", limit, step * 0.01)

    assert len(limiter) <= 2 * FIRST_SWEEP


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_a_limit_that_could_never_pass_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        RateLimit(rate, burst)
