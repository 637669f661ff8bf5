"""What must be true of a store, tracked independently of it.

The model keeps its own record of every order and computes what a claim must return from the
rule as DESIGN.md states it, in its own words (two queues: overdue oldest-first, then the rest
by priority and acceptance), never by calling `domain.scheduling` on the store's data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from skipline.domain.models import Status, Tier

Time = float


@dataclass
class ModelOrder:
    """The model's view of one order."""

    number: int
    """Acceptance number in the model (1, 2, ...): FIFO means smaller first."""
    id: str
    tier: Tier
    seq: int
    created_at: Time
    status: Status = Status.QUEUED
    available_at: Time = 0.0
    attempts: int = 0
    rescues: int = 0
    token: str | None = None
    """The token of the lease currently holding the order (None unless running)."""
    lease_until: Time = 0.0

    @property
    def label(self) -> str:
        return f"#{self.number}({self.tier.name})"

    @property
    def overdue_at(self) -> Time | None:
        if self.tier.max_wait is None:
            return None
        return self.created_at + self.tier.max_wait

    def overdue(self, now: Time) -> bool:
        due = self.overdue_at
        return due is not None and now >= due

    def ready(self, now: Time) -> bool:
        return self.status is Status.QUEUED and now >= self.available_at

    def describe(self, now: Time) -> str:
        parts = [self.label, self.status.value, f"prio={self.tier.priority}"]
        if self.status is Status.QUEUED and now < self.available_at:
            parts.append(f"backoff-until=+{self.available_at - now:g}s")
        if self.overdue(now):
            parts.append("OVERDUE")
        if self.token is not None:
            parts.append(f"lease-left={self.lease_until - now:g}s")
        return " ".join(parts)


def serves_before(first: ModelOrder, second: ModelOrder, now: Time) -> str | None:
    """Why `first` must be claimed before `second`, in words; None if it need not be."""
    first_late, second_late = first.overdue(now), second.overdue(now)
    if first_late and not second_late:
        return "an overdue order must be served before any order that is not"
    if first_late and second_late:
        if first.number < second.number:
            return "overdue orders go oldest first"
        return None
    if second_late:
        return None
    if first.tier.priority < second.tier.priority:
        return "a better priority must be served first"
    if first.tier.priority == second.tier.priority and first.number < second.number:
        return "FIFO among equal priorities"
    return None


def expected_claim(orders: list[ModelOrder], now: Time, limit: int) -> list[ModelOrder]:
    """The orders a claim of `limit` slots must return, in order."""
    ready = [o for o in orders if o.ready(now)]
    overdue = sorted((o for o in ready if o.overdue(now)), key=lambda o: o.number)
    on_time = sorted(
        (o for o in ready if not o.overdue(now)),
        key=lambda o: (o.tier.priority, o.number),
    )
    return (overdue + on_time)[: max(0, limit)]


def claim_problems(
    claimed: list[ModelOrder], ready: list[ModelOrder], now: Time, limit: int
) -> list[str]:
    """Every way a claim broke the rule, each naming the orders involved."""
    problems = []
    for order in claimed:
        if not order.ready(now):
            problems.append(f"claimed {order.describe(now)}, which was not ready")
    passed_over = [o for o in ready if o not in claimed]
    for position, order in enumerate(claimed):
        for waiting in passed_over:
            reason = serves_before(waiting, order, now)
            if reason:
                problems.append(
                    f"claimed {order.label} while {waiting.label} was ready: {reason} "
                    f"[{order.describe(now)}] vs [{waiting.describe(now)}]"
                )
        for later in claimed[position + 1 :]:
            reason = serves_before(later, order, now)
            if reason:
                problems.append(f"claim returned {order.label} before {later.label}: {reason}")
    wanted = min(limit, len(ready))
    if len(claimed) != wanted:
        problems.append(f"asked for {limit} with {len(ready)} ready; got {len(claimed)}")
    return problems


@dataclass
class QueueModel:
    """Every submitted order, keyed by id, and the tokens ever handed out."""

    tiers: dict[str, Tier]
    orders: dict[str, ModelOrder] = field(default_factory=dict)
    tokens_seen: set[str] = field(default_factory=set)

    def accept(self, order_id: str, tier: str, seq: int, now: Time) -> ModelOrder:
        record = ModelOrder(
            number=len(self.orders) + 1, id=order_id, tier=self.tiers[tier], seq=seq,
            created_at=now, available_at=now,
        )
        self.orders[order_id] = record
        return record

    def ready(self, now: Time) -> list[ModelOrder]:
        return [o for o in self.orders.values() if o.ready(now)]

    def start(self, order: ModelOrder, token: str, now: Time, lease_seconds: float) -> None:
        order.status = Status.RUNNING
        order.attempts += 1
        order.token = token
        order.lease_until = now + lease_seconds
        self.tokens_seen.add(token)

    def finish(self, order: ModelOrder, status: Status) -> None:
        order.status = status
        order.token = None

    def requeue(self, order: ModelOrder, available_at: Time) -> None:
        order.status = Status.QUEUED
        order.token = None
        order.available_at = available_at

    def expired(self, now: Time) -> list[ModelOrder]:
        """Running orders whose lease has run out (and that rescue_expired must touch)."""
        return [
            o for o in self.orders.values()
            if o.status is Status.RUNNING and o.lease_until <= now
        ]

    def counts(self) -> dict[str, dict[Status, int]]:
        table: dict[str, dict[Status, int]] = {}
        for order in self.orders.values():
            row = table.setdefault(order.tier.name, dict.fromkeys(Status, 0))
            row[order.status] += 1
        return table

    def picture(self, now: Time) -> str:
        """The whole queue as the model sees it, one order per line (for `note()`)."""
        lines = [f"model at t=+{now:g}s:"]
        lines += [f"  {o.describe(now)}" for o in self.orders.values()]
        return "\n".join(lines)
