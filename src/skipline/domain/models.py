"""The nouns of skipline: orders, tiers, statuses, API keys. Pure data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import msgspec

from skipline.domain.ratelimit import RateLimit

JSON = Any
"""A JSON-serialisable value (what `json.dumps` accepts)."""


Fairness = Literal["customers", "fifo"]
"""How a tier shares its slots: among its customers by weight (`customers`, the default), or in
plain acceptance order (`fifo`: the whole tier is one group)."""

Durability = Literal["full", "normal"]
"""How a commit is synced before its 202 (invariant 1): `full` survives power loss, `normal`
(opt-in, never the default) only a process crash."""


class Status(StrEnum):
    """Where an order is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)


@dataclass(frozen=True, slots=True)
class Tier:
    """A class of customer. Lower `priority` is served first; `max_wait` bounds starvation."""

    name: str
    priority: int
    max_wait: float | None = None
    max_queued: int | None = None
    rate_limit: RateLimit | None = None
    """Orders per second one caller of this tier may submit (per API process); None: no limit."""
    fairness: Fairness = "customers"
    max_queued_per_customer: int | None = None
    """Queued orders one fair-share group may have in this tier; None: no cap."""


DEFAULT_TIERS: dict[str, Tier] = {
    "vip": Tier("vip", priority=0, max_wait=None),
    "regular": Tier("regular", priority=1, max_wait=300.0),
}
ANONYMOUS_TIER = "regular"

MAX_DURATION = 3600.0
"""The longest `duration` an order may ask for, in seconds (what the `simulate` handler
sleeps): checked by the API schema, the service, the handler and `skipline bench`."""


DEFAULT_KIND = "default"
"""The kind of an order that names none, and the kind `--handler M:F` serves."""

KIND_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
"""What a kind's name may be: lower-case letters, digits, `_`, `.` and `-`, at most 64."""

MAX_DELAY = 30 * 86400.0
"""The furthest ahead an order may be scheduled (`delay` or `not_before`), in seconds."""


MAX_WAIT = 60.0
"""The longest a `GET /orders/{id}?wait=S` may hold its request for the order to finish."""


class NewOrder(msgspec.Struct, frozen=True):
    """What a store needs to accept an order; the store assigns `seq` and timestamps. (A
    frozen Struct, like Order: one is built for every submission.)"""

    id: str
    tier: str
    priority: int
    payload: JSON = None
    duration: float = 0.0
    owner: str = ""
    """Name of the API key that submitted it; empty for anonymous callers."""
    idempotency_key: str | None = None
    max_wait: float | None = None
    """Seconds after acceptance past which the order is overdue (served first)."""
    fingerprint: str | None = None
    """Of the request that submitted it under an idempotency key (domain/fingerprint.py):
    a replay with another fingerprint is another request reusing the key."""
    customer: str = ""
    """The key's own customer (keys made with --customers); with `owner` it names the order's
    fair-share group."""
    weight: int = 1
    """Shares of the order's group (the key's weight)."""
    fifo: bool = False
    """The tier is plain FIFO: every order of it is in one group."""
    callback_url: str | None = None
    """Where its outcome is POSTed once it is final (checked against the allow list)."""
    kind: str = DEFAULT_KIND
    """Which handler runs it: only workers serving this kind claim it."""
    not_before: float | None = None
    """Not claimable before this time (a scheduled order); None: at once."""

    def due_from(self, accepted_at: float) -> float:
        """When the order becomes claimable if a store accepts it at `accepted_at`."""
        if self.not_before is None or self.not_before < accepted_at:
            return accepted_at
        return self.not_before

    def overdue_from(self, accepted_at: float) -> float | None:
        """When the order is overdue if a store accepts it at `accepted_at`; None: never.
        Its `max_wait` clock starts when it is due, so a scheduled order is not overdue the
        moment its time comes (invariant 3, docs/architecture.md)."""
        return None if self.max_wait is None else self.due_from(accepted_at) + self.max_wait

    def queued(
        self, seq: int, created_at: float, overdue_at: float | None, start_tag: int = 0,
    ) -> Order:
        """The order a store made of this submission: queued as `seq` at `created_at` with
        its fair-share `start_tag` (domain.fairness), never run, available at once.
        `overdue_at` is passed in because PostgreSQL computes it on its own clock; the other
        stores use `overdue_from(created_at)`."""
        # Positional, in Order's field order (started_at, finished_at, result and error are
        # None): on the submission hot path, about 0.1 µs less than by keyword, measured.
        available_at = created_at if self.not_before is None else self.due_from(created_at)
        return Order(
            self.id, seq, self.tier, self.priority, Status.QUEUED, 0, 0, self.payload,
            self.duration, self.owner, created_at, overdue_at, available_at,
            None, None, None, None, self.idempotency_key, self.fingerprint, self.customer,
            start_tag, self.callback_url, (), self.kind, self.not_before,
        )


class Order(msgspec.Struct, frozen=True):
    """An order as a store records it. Times are seconds since the epoch (UTC).

    A frozen msgspec Struct rather than a frozen dataclass: the same immutable value with
    equality and hashing, built in C. Every order is built twice on the hot path (when it is
    accepted and when it is claimed), and a frozen dataclass's __init__ sets each of its 18
    fields through object.__setattr__: 1.8 µs against 0.2 µs, measured."""

    id: str
    seq: int
    tier: str
    priority: int
    status: Status
    attempts: int
    rescues: int
    payload: JSON
    duration: float
    owner: str
    created_at: float
    overdue_at: float | None = None
    available_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    result: JSON = None
    error: str | None = None
    idempotency_key: str | None = None
    fingerprint: str | None = None
    """The submitting request's fingerprint when it had an idempotency key (else None, as
    for orders stored before fingerprints were kept)."""
    customer: str = ""
    start_tag: int = 0
    """Virtual start time given at acceptance (domain.fairness): the order's place among the
    groups of its priority; it never changes, so a retried order keeps its place."""
    callback_url: str | None = None
    history: tuple[PastRun, ...] = ()
    """How its earlier runs ended, oldest first: one entry per requeue (`retry`)."""
    kind: str = DEFAULT_KIND
    not_before: float | None = None
    """When it was scheduled for (None: at once); `available_at` is never before it."""

    def next_attempt_at(self, now: float) -> float | None:
        """When a retry waiting out its backoff runs again; None for anything else (a fresh
        or scheduled order has not run yet, so attempts is 0)."""
        if self.status is Status.QUEUED and self.attempts > 0 and self.available_at > now:
            return self.available_at
        return None


class PastRun(msgspec.Struct, frozen=True):
    """How an order's run ended before it was queued again by a requeue: its error stays
    visible here."""

    status: Status
    error: str | None
    attempts: int
    finished_at: float | None


def past_runs(value: JSON) -> tuple[PastRun, ...]:
    """A stored history (a JSON array of objects, or None) as PastRuns."""
    if not value:
        return ()
    return msgspec.convert(value, tuple[PastRun, ...])


DeliveryStatus = Literal["pending", "delivered", "failed"]
"""A callback delivery: still to be delivered (retried with backoff), delivered (a 2xx
answer), or given up (failed)."""


class Delivery(msgspec.Struct, frozen=True):
    """The delivery of one order's outcome to its callback URL."""

    order_id: str
    url: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    created_at: float
    """When the order became final (the delivery's 24 hours run from here)."""
    next_at: float


class Lease(msgspec.Struct, frozen=True):
    """A claimed order and the token that proves the claim is still ours."""

    order: Order
    token: str


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as stored: only the hash of the secret is kept."""

    name: str
    tier: str
    admin: bool
    key_hash: str
    created_at: float
    revoked: bool = False
    customers: bool = False
    """May name its own customers (`customer` on POST): each is a fair-share group."""
    weight: int = 1
    """Shares each of the key's groups gets inside its tier."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is making a request: an API key's identity, or anonymous."""

    name: str
    tier: str
    admin: bool = False
    customers: bool = False
    weight: int = 1

    @property
    def anonymous(self) -> bool:
        return self.name == ""


ANONYMOUS = Caller(name="", tier=ANONYMOUS_TIER)


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """A page of orders, newest first. `before_seq` is the cursor from the previous page."""

    owner: str | None = None
    """Only this owner's orders; None means every owner (admin)."""
    status: Status | None = None
    tier: str | None = None
    limit: int = 50
    before_seq: int | None = None
    customer: str | None = None
    """Only orders of this customer (of the key's, or of any key for an admin)."""
    kind: str | None = None


@dataclass(frozen=True, slots=True)
class TierCounts:
    """How many orders of one tier are in each status."""

    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Counts and recent waits, as a store can cheaply report them."""

    counts: dict[str, TierCounts] = field(default_factory=dict)
    recent_waits: dict[str, list[float]] = field(default_factory=dict)
    """Per tier, submit-to-start seconds of the most recently started orders (from when a
    scheduled order was due)."""
    kinds: dict[str, TierCounts] = field(default_factory=dict)
    """The same counts per kind."""
    kind_waits: dict[str, list[float]] = field(default_factory=dict)
    """Per kind, the waits of its most recently started orders."""
    finished_last_minute: int = 0
