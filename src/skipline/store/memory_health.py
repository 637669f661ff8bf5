"""Queue health for the memory store, computed from its orders (tests and the tutorial: a
plain pass over every order is fast enough there)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from skipline.domain.models import GroupHealth, LineHealth, Order, QueueHealth, Status
from skipline.domain.reporting import BUSIEST_GROUPS, LONGEST_WAITING


def due_at(order: Order) -> float:
    """When the order became due: accepted, or its scheduled time if later."""
    return max(order.created_at, order.not_before or 0.0)


def queue_health(orders: Iterable[Order], now: float, window: float) -> QueueHealth:
    """What Store.queue_health reports, from `orders` at `now`."""
    ready: list[Order] = []
    groups: dict[tuple[str, str, str], list[Order]] = {}
    finished = {Status.SUCCEEDED: 0, Status.FAILED: 0}
    for order in orders:
        is_ready = order.status is Status.QUEUED and order.available_at <= now
        if is_ready or order.status is Status.RUNNING:
            groups.setdefault((order.tier, order.owner, order.customer), []).append(order)
        if is_ready:
            ready.append(order)
        elif order.status in finished and (order.finished_at or 0.0) >= now - window:
            finished[order.status] += 1
    return QueueHealth(
        tiers=lines(ready, lambda order: order.tier, now),
        kinds=lines(ready, lambda order: order.kind, now),
        groups=busiest_groups(groups, now),
        succeeded=finished[Status.SUCCEEDED],
        failed=finished[Status.FAILED],
    )


def lines(ready: list[Order], line_of: Callable[[Order], str], now: float,
          ) -> dict[str, LineHealth]:
    by_line: dict[str, list[Order]] = {}
    for order in ready:
        by_line.setdefault(line_of(order), []).append(order)
    return {name: line_health(members, now) for name, members in by_line.items()}


def line_health(ready: list[Order], now: float) -> LineHealth:
    ages = sorted((now - due_at(order) for order in ready), reverse=True)
    overdue = sum(1 for order in ready if order.overdue_at is not None
                  and order.overdue_at <= now)
    return LineHealth(len(ready), ages[0], overdue, ages[:LONGEST_WAITING])


def busiest_groups(
    groups: dict[tuple[str, str, str], list[Order]], now: float
) -> list[GroupHealth]:
    found = []
    for (tier, owner, customer), members in groups.items():
        ready = [order for order in members if order.status is Status.QUEUED]
        oldest = min((due_at(order) for order in ready), default=None)
        found.append(GroupHealth(
            tier, owner, customer, len(ready), len(members) - len(ready),
            None if oldest is None else now - oldest,
        ))
    found.sort(key=lambda group: (-group.ready, -group.running, group.tier, group.owner,
                                  group.customer))
    return found[:BUSIEST_GROUPS]
