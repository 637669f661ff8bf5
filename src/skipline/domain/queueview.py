"""The queue as the dashboard shows it: a store's counts and queue health combined into one
figure per tier, with waits that include the orders still waiting."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from skipline.domain.models import GroupHealth, LineHealth, QueueHealth, StoreStats, TierCounts
from skipline.domain.reporting import OUTCOME_WINDOW
from skipline.domain.scheduling import percentile


@dataclass(frozen=True, slots=True)
class TierView:
    """One tier's (or kind's) queue: `queued` counts every queued order, scheduled ones too;
    the age, overdue count and waits concern the due ones."""

    queued: int
    running: int
    oldest_age: float | None
    overdue: int
    wait_p50: float | None
    wait_p99: float | None
    """Percentiles over the recent starts' waits AND the longest-waiting due orders' ages: a
    starving tier shows its starvation here even before any of its orders starts."""


@dataclass(frozen=True, slots=True)
class QueueView:
    tiers: dict[str, TierView] = field(default_factory=dict)
    kinds: dict[str, TierView] = field(default_factory=dict)
    groups: list[GroupHealth] = field(default_factory=list)
    succeeded_per_second: float = 0.0
    failed_per_second: float = 0.0


def queue_view(stats: StoreStats, health: QueueHealth) -> QueueView:
    """Every tier and kind either reading knows of; rates over OUTCOME_WINDOW."""
    tiers = set(stats.counts) | set(health.tiers)
    kinds = set(stats.kinds) | set(health.kinds)
    return QueueView(
        tiers={name: line_view(stats.counts.get(name), stats.recent_waits.get(name, ()),
                               health.tiers.get(name)) for name in sorted(tiers)},
        kinds={name: line_view(stats.kinds.get(name), stats.kind_waits.get(name, ()),
                               health.kinds.get(name)) for name in sorted(kinds)},
        groups=health.groups,
        succeeded_per_second=health.succeeded / OUTCOME_WINDOW,
        failed_per_second=health.failed / OUTCOME_WINDOW,
    )


def line_view(
    counts: TierCounts | None, started: Sequence[float], health: LineHealth | None,
) -> TierView:
    waits = [*started, *(health.waiting if health else ())]
    ready = health.ready if health else 0
    return TierView(
        queued=max(counts.queued, ready) if counts else ready,
        running=counts.running if counts else 0,
        oldest_age=health.oldest_age if health else None,
        overdue=health.overdue if health else 0,
        wait_p50=percentile(waits, 0.50),
        wait_p99=percentile(waits, 0.99),
    )
