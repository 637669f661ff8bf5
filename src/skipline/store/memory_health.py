"""Queue health for the memory store, computed from its orders (tests and the tutorial: a
plain pass over every order is fast enough there)."""

from __future__ import annotations

from collections.abc import Iterable

from skipline.domain.models import GroupHealth, Order, QueueHealth, Status, TierHealth
from skipline.domain.reporting import BUSIEST_GROUPS, LONGEST_WAITING


def queue_health(orders: Iterable[Order], now: float, window: float) -> QueueHealth:
    """What Store.queue_health reports, from `orders` at `now`."""
    waiting: dict[str, list[Order]] = {}
    groups: dict[tuple[str, str, str], list[Order]] = {}
    finished = {Status.SUCCEEDED: 0, Status.FAILED: 0}
    for order in orders:
        if order.status in (Status.QUEUED, Status.RUNNING):
            groups.setdefault((order.tier, order.owner, order.customer), []).append(order)
        if order.status is Status.QUEUED:
            waiting.setdefault(order.tier, []).append(order)
        elif order.status in finished and (order.finished_at or 0.0) >= now - window:
            finished[order.status] += 1
    return QueueHealth(
        tiers={tier: tier_health(queued, now) for tier, queued in waiting.items()},
        groups=busiest_groups(groups, now),
        succeeded=finished[Status.SUCCEEDED],
        failed=finished[Status.FAILED],
    )


def tier_health(queued: list[Order], now: float) -> TierHealth:
    ages = sorted((now - order.created_at for order in queued), reverse=True)
    overdue = sum(1 for order in queued if order.overdue_at is not None
                  and order.overdue_at <= now)
    return TierHealth(len(queued), ages[0], overdue, ages[:LONGEST_WAITING])


def busiest_groups(
    groups: dict[tuple[str, str, str], list[Order]], now: float
) -> list[GroupHealth]:
    found = []
    for (tier, owner, customer), members in groups.items():
        queued = [order for order in members if order.status is Status.QUEUED]
        oldest = min((order.created_at for order in queued), default=None)
        found.append(GroupHealth(
            tier, owner, customer, len(queued), len(members) - len(queued),
            None if oldest is None else now - oldest,
        ))
    found.sort(key=lambda group: (-group.queued, -group.running, group.tier, group.owner,
                                  group.customer))
    return found[:BUSIEST_GROUPS]
