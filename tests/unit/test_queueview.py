"""The dashboard's per-tier figures: waits include the orders still waiting, so a tier whose
orders starve shows it even while its few starts were quick."""

from __future__ import annotations

from skipline.domain.models import LineHealth, QueueHealth, StoreStats, TierCounts
from skipline.domain.queueview import queue_view
from skipline.domain.reporting import OUTCOME_WINDOW


def test_waits_include_the_orders_still_waiting() -> None:
    stats = StoreStats(counts={"regular": TierCounts(queued=201, running=2)},
                       recent_waits={"regular": [0.5] * 100})
    health = QueueHealth(tiers={"regular": LineHealth(201, 50.0, 12, [50.0 - n / 10
                                                                      for n in range(201)])})

    regular = queue_view(stats, health).tiers["regular"]

    assert (regular.queued, regular.running, regular.oldest_age, regular.overdue) == (
        201, 2, 50.0, 12)
    assert regular.wait_p99 is not None and regular.wait_p99 > 49
    assert regular.wait_p50 is not None and regular.wait_p50 > 30


def test_a_tier_with_nothing_queued_has_only_its_starts() -> None:
    stats = StoreStats(counts={"vip": TierCounts(succeeded=3)}, recent_waits={"vip": [0.1, 0.2]})

    view = queue_view(stats, QueueHealth(succeeded=20, failed=5))

    assert view.tiers["vip"].oldest_age is None and view.tiers["vip"].wait_p99 == 0.2
    assert view.succeeded_per_second == 20 / OUTCOME_WINDOW
    assert view.failed_per_second == 5 / OUTCOME_WINDOW


def test_kinds_get_the_same_figures_and_queued_counts_the_scheduled_too() -> None:
    stats = StoreStats(kinds={"ship": TierCounts(queued=5, running=1)},
                       kind_waits={"ship": [0.2, 0.3]})
    health = QueueHealth(kinds={"ship": LineHealth(2, 9.0, 1, [9.0, 8.0])})

    ship = queue_view(stats, health).kinds["ship"]

    assert (ship.queued, ship.running, ship.oldest_age, ship.overdue) == (5, 1, 9.0, 1)
    assert ship.wait_p99 == 9.0
