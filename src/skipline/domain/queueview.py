"""The queue as the dashboard shows it: a store's counts and queue health combined into one
figure per tier, with waits that include the orders still waiting."""

from __future__ import annotations

from dataclasses import dataclass, field

from skipline.domain.models import GroupHealth, QueueHealth, StoreStats, TierHealth
from skipline.domain.reporting import OUTCOME_WINDOW
from skipline.domain.scheduling import percentile


@dataclass(frozen=True, slots=True)
class TierView:
    queued: int
    running: int
    oldest_age: float | None
    overdue: int
    wait_p50: float | None
    wait_p99: float | None
    """Percentiles over the recent starts' waits AND the longest-waiting queued orders' ages:
    a starving tier shows its starvation here even before any of its orders starts."""


@dataclass(frozen=True, slots=True)
class QueueView:
    tiers: dict[str, TierView] = field(default_factory=dict)
    groups: list[GroupHealth] = field(default_factory=list)
    succeeded_per_second: float = 0.0
    failed_per_second: float = 0.0


def queue_view(stats: StoreStats, health: QueueHealth) -> QueueView:
    """Every tier either reading knows of; rates over OUTCOME_WINDOW."""
    names = set(stats.counts) | set(health.tiers)
    return QueueView(
        tiers={name: tier_view(name, stats, health.tiers.get(name)) for name in sorted(names)},
        groups=health.groups,
        succeeded_per_second=health.succeeded / OUTCOME_WINDOW,
        failed_per_second=health.failed / OUTCOME_WINDOW,
    )


def tier_view(name: str, stats: StoreStats, health: TierHealth | None) -> TierView:
    counts = stats.counts.get(name)
    waiting = [] if health is None else health.waiting
    waits = [*stats.recent_waits.get(name, ()), *waiting]
    return TierView(
        queued=health.queued if health else 0,
        running=counts.running if counts else 0,
        oldest_age=health.oldest_age if health else None,
        overdue=health.overdue if health else 0,
        wait_p50=percentile(waits, 0.50),
        wait_p99=percentile(waits, 0.99),
    )
