"""The claim rule, written once: overdue orders first (oldest first), then best priority,
then the fair-share start tag (domain.fairness: groups alternate by weight), then acceptance
sequence. Every store's claim query implements exactly this order."""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Sequence

from skipline.domain.models import Order, Status


def is_overdue(order: Order, now: float) -> bool:
    """An order is overdue once it has waited past its tier's `max_wait`."""
    return order.overdue_at is not None and order.overdue_at <= now


def is_ready(order: Order, now: float) -> bool:
    """Queued, and neither scheduled for later nor waiting out a retry backoff."""
    return order.status is Status.QUEUED and order.available_at <= now


def claim_key(order: Order, now: float) -> tuple[int, int, int, int]:
    """Sort key of the claim rule: smaller is claimed first."""
    if is_overdue(order, now):
        return (0, 0, 0, order.seq)
    return (1, order.priority, order.start_tag, order.seq)


def pick_claims(
    orders: Sequence[Order], now: float, limit: int, kinds: Collection[str] | None = None,
) -> list[Order]:
    """The ready orders a claim of `limit` slots must return, in claim order: only orders of
    `kinds` (None: of any kind), and none before its `not_before` (available_at)."""
    if limit <= 0:
        return []
    ready = [
        o for o in orders if is_ready(o, now) and (kinds is None or o.kind in kinds)]
    ready.sort(key=lambda o: claim_key(o, now))
    return ready[:limit]


def retry_delay(
    attempts: int, base: float = 1.0, cap: float = 300.0, jitter: float = 0.1,
    rng: random.Random | None = None,
) -> float:
    """Exponential backoff after the `attempts`-th failed run: base * 2**(attempts-1), capped,
    with a little proportional jitter so retries of a burst do not align."""
    exponent = max(0, attempts - 1)
    delay = cap if exponent >= 64 else min(cap, base * (2.0**exponent))
    spread = (rng or random).uniform(-jitter, jitter) if jitter else 0.0
    return max(0.0, delay * (1.0 + spread))


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile (fraction in [0, 1]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


DUE_LOOKAHEAD = 32
"""How many waiting orders (earliest due first) a store reads to answer `next_due`. The
waiting index holds no kind, so a store looks at this many at most: a far backlog of other
kinds costs a bounded read, and the answer is then the last one's time (ours come no sooner)."""


def earliest_due(
    waiting: Sequence[tuple[float, str]], kinds: Collection[str] | None,
) -> float | None:
    """When the first waiting order of `kinds` comes due, or no later: `waiting` is (due,
    kind) of the earliest waiting orders in due order, at most DUE_LOOKAHEAD of them. None
    when none of `kinds` waits."""
    for due, kind in waiting:
        if kinds is None or kind in kinds:
            return due
    if len(waiting) >= DUE_LOOKAHEAD:
        return waiting[-1][0]
    return None
