"""What must be true of a store, tracked independently of it.

The model keeps its own record of every order and computes what a claim must return from the
rule as invariants 2 and 3 (docs/architecture.md) state it, in their own words (two queues:
overdue oldest-first, then the rest by priority, then the fair-share turn, then acceptance),
never by calling `domain.scheduling` or `domain.fairness` on the store's data. Turns are
start-time fair queuing: each priority has a virtual time (the latest turn handed out), each
group the end of its last turn; an accepted order's turn starts at the later of the two and
lasts SHARE // weight (SHARE in a fifo tier, one group whatever the weights).
Likewise it says which finished orders retention may delete (`prunable`, `prune_problems`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from skipline.domain.models import Status, Tier

SHARE = 720_720
"""The length of one turn of a weight-1 group, in tag units (what the stores use)."""

Time = float
Group = tuple[str, str, str]
"""(tier, owner, customer); a fifo tier is the single group (tier, "", "")."""
FINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})


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
    finished_at: Time | None = None
    """When it became final (succeeded, failed, cancelled); None while it is not."""
    idempotency_key: str | None = None
    owner: str = ""
    customer: str = ""
    turn: int = 0
    """Start of the order's fair-share turn (the store's start tag)."""
    kind: str = "default"
    not_before: Time | None = None
    """When a scheduled order becomes due (None: at once)."""

    @property
    def label(self) -> str:
        who = f"{self.owner}/{self.customer}" if self.customer else self.owner or "anon"
        return f"#{self.number}({self.tier.name},{who},{self.kind})"

    @property
    def due_at(self) -> Time:
        """When it became claimable: at acceptance, or at its not_before if that is later."""
        if self.not_before is None:
            return self.created_at
        return max(self.created_at, self.not_before)

    @property
    def overdue_at(self) -> Time | None:
        """The max_wait clock starts when the order is due, not when it was accepted."""
        if self.tier.max_wait is None:
            return None
        return self.due_at + self.tier.max_wait

    def overdue(self, now: Time) -> bool:
        due = self.overdue_at
        return due is not None and now >= due

    def ready(self, now: Time) -> bool:
        return self.status is Status.QUEUED and now >= self.available_at

    def describe(self, now: Time) -> str:
        parts = [self.label, self.status.value, f"prio={self.tier.priority}",
                 f"turn={self.turn / SHARE:g}"]
        if self.status is Status.QUEUED and now < self.available_at:
            waits_for = "backoff" if self.attempts else "scheduled"
            parts.append(f"{waits_for}-until=+{self.available_at - now:g}s")
        if self.overdue(now):
            parts.append("OVERDUE")
        if self.token is not None:
            parts.append(f"lease-left={self.lease_until - now:g}s")
        if self.finished_at is not None:
            parts.append(f"finished={now - self.finished_at:g}s-ago")
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
    if first.tier.priority != second.tier.priority:
        return None
    if first.turn < second.turn:
        return "fair share: an earlier turn must be served first"
    if first.turn == second.turn and first.number < second.number:
        return "FIFO among equal priorities and turns"
    return None


def expected_claim(
    orders: list[ModelOrder], now: Time, limit: int, kinds: tuple[str, ...] | None = None,
) -> list[ModelOrder]:
    """The orders a claim of `limit` slots for `kinds` (None: any) must return, in order."""
    ready = [o for o in orders if o.ready(now) and (kinds is None or o.kind in kinds)]
    overdue = sorted((o for o in ready if o.overdue(now)), key=lambda o: o.number)
    on_time = sorted(
        (o for o in ready if not o.overdue(now)),
        key=lambda o: (o.tier.priority, o.turn, o.number),
    )
    return (overdue + on_time)[: max(0, limit)]


def claim_problems(
    claimed: list[ModelOrder], ready: list[ModelOrder], now: Time, limit: int,
    kinds: tuple[str, ...] | None = None,
) -> list[str]:
    """Every way a claim broke the rule, each naming the orders involved; `ready` holds the
    ready orders of the claim's `kinds`."""
    problems = []
    for order in claimed:
        if not order.ready(now):
            problems.append(f"claimed {order.describe(now)}, which was not ready")
        if kinds is not None and order.kind not in kinds:
            problems.append(f"claimed {order.label} for a worker serving only {kinds}")
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


def prunable(orders: list[ModelOrder], now: Time, older_than: float) -> list[ModelOrder]:
    """The orders retention may delete, longest finished first: final, and finished strictly
    more than `older_than` seconds before `now`. Orders that finished at the same moment keep
    acceptance order here, but a store may take them in any order."""
    cutoff = now - older_than
    doomed = [
        o for o in orders
        if o.status in FINAL and o.finished_at is not None and o.finished_at < cutoff
    ]
    return sorted(doomed, key=lambda o: o.finished_at or 0.0)


def prune_problems(
    deleted: list[ModelOrder], eligible: list[ModelOrder], count: int, limit: int,
    now: Time, older_than: float,
) -> list[str]:
    """Every way a prune broke the rule. `deleted` is what the store actually removed: any
    `min(limit, len(eligible))` of the eligible orders is right as long as none of them
    finished later than one left behind (ties at the limit may go either way)."""
    problems = []
    allowed = {o.id for o in eligible}
    for order in deleted:
        if order.id not in allowed:
            why = (
                f"which is {order.status.value}" if order.finished_at is None
                else f"which finished only {now - order.finished_at:g}s ago"
            )
            problems.append(
                f"prune(older_than={older_than:g}) deleted {order.describe(now)}, {why}"
            )
    wanted = min(limit, len(eligible))
    if len(deleted) != wanted:
        problems.append(
            f"asked to prune at most {limit} with {len(eligible)} prunable "
            f"{[o.label for o in eligible]}; {len(deleted)} deleted {[o.label for o in deleted]}"
        )
    if count != len(deleted):
        problems.append(f"prune_finished returned {count} but deleted {len(deleted)}")
    gone = {o.id for o in deleted}
    kept = [o for o in eligible if o.id not in gone]
    for order in deleted:
        for older in kept:
            if (
                order.finished_at is not None and older.finished_at is not None
                and older.finished_at < order.finished_at
            ):
                problems.append(
                    f"prune deleted {order.label} but kept {older.label}, which finished "
                    "earlier: the longest finished go first "
                    f"[{order.describe(now)}] vs [{older.describe(now)}]"
                )
    return problems


@dataclass
class QueueModel:
    """Every order the store holds, keyed by id; those retention deleted; the tokens ever
    handed out; and which order each idempotency key belongs to."""

    tiers: dict[str, Tier]
    orders: dict[str, ModelOrder] = field(default_factory=dict)
    pruned: dict[str, ModelOrder] = field(default_factory=dict)
    tokens_seen: set[str] = field(default_factory=set)
    keys: dict[str, str] = field(default_factory=dict)
    """Idempotency key -> id of the live order that holds it."""
    accepted: int = 0
    last_seq: int | None = None
    """The highest seq ever handed out, pruned orders' included (seqs are never reused)."""
    virtual: dict[int, int] = field(default_factory=dict)
    """Per priority, the latest turn handed out by a claim."""
    turn_ends: dict[Group, int] = field(default_factory=dict)
    """Per group, where the turn of its last accepted order ends."""

    def accept(
        self, order_id: str, tier: str, seq: int, now: Time, key: str | None = None,
        owner: str = "", customer: str = "", weight: int = 1, kind: str = "default",
        not_before: Time | None = None,
    ) -> ModelOrder:
        self.accepted += 1
        spec = self.tiers[tier]
        group = (tier, "", "") if spec.fairness == "fifo" else (tier, owner, customer)
        turn = max(self.virtual.get(spec.priority, 0), self.turn_ends.get(group, 0))
        self.turn_ends[group] = turn + (SHARE if spec.fairness == "fifo" else SHARE // weight)
        record = ModelOrder(
            number=self.accepted, id=order_id, tier=spec, seq=seq,
            created_at=now, available_at=now, idempotency_key=key,
            owner=owner, customer=customer, turn=turn, kind=kind, not_before=not_before,
        )
        record.available_at = record.due_at
        self.orders[order_id] = record
        self.last_seq = seq
        if key is not None:
            self.keys[key] = order_id
        return record

    def label(self, order_id: str) -> str:
        """An order's label, also once pruned."""
        record = self.orders.get(order_id) or self.pruned.get(order_id)
        return "an unknown order" if record is None else record.label

    def forget(self, deleted: list[ModelOrder]) -> None:
        """Retention deleted these: gone from the store, and their keys free again."""
        for order in deleted:
            del self.orders[order.id]
            self.pruned[order.id] = order
            if order.idempotency_key is not None:
                del self.keys[order.idempotency_key]

    def ready(self, now: Time, kinds: tuple[str, ...] | None = None) -> list[ModelOrder]:
        """Ready orders of `kinds` (None: of any kind)."""
        return [
            o for o in self.orders.values()
            if o.ready(now) and (kinds is None or o.kind in kinds)]

    def start(self, order: ModelOrder, token: str, now: Time, lease_seconds: float) -> None:
        order.status = Status.RUNNING
        order.attempts += 1
        priority = order.tier.priority
        self.virtual[priority] = max(self.virtual.get(priority, 0), order.turn)
        order.token = token
        order.lease_until = now + lease_seconds
        self.tokens_seen.add(token)

    def finish(self, order: ModelOrder, status: Status, now: Time) -> None:
        order.status = status
        order.token = None
        order.finished_at = now

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
