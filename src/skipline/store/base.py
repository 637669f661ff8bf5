"""The Store protocol: everything the service and the workers need from a backend.

Every backend (memory, sqlite, postgres) implements it and passes tests/contract unchanged.
Delays are passed as seconds rather than absolute times so a backend may measure them on its
own clock (PostgreSQL uses the database's `now()`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from skipline.domain.fairness import GroupKey
from skipline.domain.models import (
    JSON,
    ApiKey,
    Delivery,
    Lease,
    NewOrder,
    Order,
    OrderQuery,
    QueueHealth,
    Status,
    StoreStats,
)
from skipline.domain.workers import WorkerProcess, WorkerSignIn


class Store(Protocol):
    """A durable home for orders and API keys."""

    async def open(self) -> None:
        """Connect and apply pending migrations. Called once before any other method."""
        ...

    async def close(self) -> None:
        """Flush pending writes and release connections. Idempotent."""
        ...

    # --- orders -------------------------------------------------------------------------
    async def submit(self, new: NewOrder) -> tuple[Order, bool]:
        """Durably accept an order; returns (order, created). When `new.idempotency_key` was
        already used by the same owner, returns the first order and created=False.
        The order's start tag and its group's new finish tag (domain.fairness) are committed
        with it. Returns only after the commit holding the order (invariant 1)."""
        ...

    async def get(self, order_id: str) -> Order | None:
        ...

    async def wait_final(self, order_id: str, max_seconds: float) -> Order | None:
        """The order as soon as it is final (succeeded, failed, cancelled), or as it is after
        `max_seconds`; None if there is no such order. Woken by the finish itself (in-process
        signal; PostgreSQL LISTEN/NOTIFY across processes), never by polling."""
        ...

    async def list_orders(self, query: OrderQuery) -> list[Order]:
        """Newest first (by seq descending), at most `query.limit`."""
        ...

    async def cancel(self, order_id: str) -> Order:
        """Cancel a queued order (scheduled or not). Raises OrderNotFound, or
        OrderNotCancellable if it is not queued any more."""
        ...

    async def requeue(self, order_id: str) -> Order:
        """Queue a failed or cancelled order again (a `retry` by its owner): attempts and
        rescues start from 0 (a fresh budget); tier, priority, seq and callback are kept; the
        overdue clock restarts; how its last run ended (status, error, attempts) is appended
        to its history, and its error stays until the next outcome. Wakes idle workers.
        Raises OrderNotFound, or OrderNotRequeueable when it is queued, running or
        succeeded."""
        ...

    # --- the worker side ------------------------------------------------------------------
    async def claim(
        self, worker_id: str, limit: int, lease_seconds: float,
        kinds: Sequence[str] | None = None,
    ) -> list[Lease]:
        """Claim at most `limit` ready orders of `kinds` (None: any kind) in claim-rule order
        (domain.scheduling), mark them running with `attempts + 1`, a fresh lease token and a
        lease of `lease_seconds`, and move each claimed priority's virtual time up to the
        largest start tag claimed. An order is never ready before its `not_before`, and a
        backlog of orders scheduled for later costs a claim nothing (each backend says how)."""
        ...

    async def heartbeat(self, leases: Sequence[tuple[str, str]], lease_seconds: float) -> set[str]:
        """Extend the leases given as (order_id, token); returns the ids still held."""
        ...

    async def complete(self, order_id: str, token: str, result: JSON) -> bool:
        """Mark succeeded iff the lease token still holds; False if the lease was lost."""
        ...

    async def fail(
        self, order_id: str, token: str, error: str, retry_delay: float | None
    ) -> Status | None:
        """Record a failed run. With `retry_delay` the order is queued again, ready after that
        many seconds, keeping its priority and seq; with None it is failed for good (dead
        letter). Returns the new status, or None if the lease was lost."""
        ...

    async def release(self, order_ids_tokens: Sequence[tuple[str, str]]) -> int:
        """Give leases back (graceful drain): the orders are queued again at once, keeping
        their priority and seq. Returns how many were released."""
        ...

    async def rescue_expired(self, max_rescues: int) -> int:
        """Put orders whose lease expired back in the queue (`rescues + 1`), or fail them when
        they have been rescued `max_rescues` times already. Returns how many were touched."""
        ...

    async def prune_finished(self, older_than: float, limit: int) -> int:
        """Retention: delete at most `limit` orders that are final (succeeded, failed,
        cancelled) and finished more than `older_than` seconds ago on the store's clock, the
        longest finished first; returns how many. Queued and running orders are never
        deleted. A deleted order is gone for good, and so is its Idempotency-Key: a retry
        with that key afterwards creates a new order. Bounded work per call, and nothing
        added to submit, claim or complete (each backend says how)."""
        ...

    async def next_due(self, kinds: Sequence[str] | None = None) -> float | None:
        """Seconds (on the store's clock) until the earliest queued order of `kinds` (None:
        any kind) that is not ready yet, scheduled or backing off, comes due; at most 0 when
        it is due already; None when no such order waits. It may answer sooner than that
        (never later): an idle pool bounds its wait with it, so a scheduled order starts when
        due rather than at the next poll. A few index entries at most (each backend says how),
        read once per idle wait."""
        ...

    async def wait_for_work(self, max_seconds: float) -> None:
        """Return when new work may be ready (an order was committed or released), or after
        `max_seconds`, whichever is first."""
        ...

    # --- callback deliveries -------------------------------------------------------------------
    # The finish that makes an order with a callback_url final makes its delivery pending, in
    # the same transaction (each backend says how).
    async def claim_deliveries(self, limit: int, lease_seconds: float) -> list[Delivery]:
        """At most `limit` pending deliveries that are due, oldest due first, each put off by
        `lease_seconds` so that no other delivery service takes it meanwhile."""
        ...

    async def record_delivery(
        self, order_id: str, error: str | None, retry_delay: float | None
    ) -> None:
        """One attempt's outcome (attempts + 1): delivered when `error` is None; else due
        again after `retry_delay` seconds, or with None given up (failed)."""
        ...

    async def deliveries(self, order_ids: Sequence[str]) -> dict[str, Delivery]:
        """The deliveries of those orders that have one, by order id."""
        ...

    # --- the worker registry ------------------------------------------------------------------
    # One row per live worker pool, expired like a lease on the store's clock (invariant 4
    # (docs/architecture.md)): a row whose expiry has passed is a process that is gone.
    async def register_worker(self, worker: WorkerSignIn, expiry_seconds: float) -> None:
        """Sign a pool in, replacing any row with its id: started and last heard of now, no
        slot busy, alive for `expiry_seconds` unless it beats again."""
        ...

    async def beat_worker(self, worker_id: str, slots_busy: int, expiry_seconds: float) -> bool:
        """A pool's heartbeat: `slots_busy` now, last heard of now, alive `expiry_seconds`
        longer. False (and nothing changed) when the registry no longer holds the pool alive
        (its row expired or was removed): the pool then signs in again."""
        ...

    async def remove_worker(self, worker_id: str) -> bool:
        """A pool's graceful stop: its row is deleted; whether there was one."""
        ...

    async def list_workers(self) -> list[WorkerProcess]:
        """The live pools (expiry still ahead on the store's clock), the longest running
        first (then by id)."""
        ...

    async def prune_workers(self) -> int:
        """Delete the rows whose expiry has passed (the lease reaper calls it); how many."""
        ...

    # --- reporting --------------------------------------------------------------------------
    async def stats(self) -> StoreStats:
        ...

    async def queue_health(self, window: float) -> QueueHealth:
        """Per tier with queued orders: how many, the oldest one's age, how many are overdue
        and the ages of the longest-waiting ones; the busiest fair-share groups; and how many
        orders succeeded and failed in the last `window` seconds. Ages on the store's clock.
        Reads every queued and running order once (a dashboard's poll, not the hot path)."""
        ...

    async def queued_counts(self) -> dict[str, int]:
        """Queued orders per tier; cheap enough to call on every submission."""
        ...

    async def fair_position(self, priority: int, group: GroupKey) -> tuple[int, int]:
        """(virtual time of `priority`, finish tag of `group`), both 0 when never used: where
        the group stands in its line (domain.fairness.group_backlog); one small read."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store can be reached right now."""
        ...

    # --- API keys ---------------------------------------------------------------------------
    async def add_key(self, key: ApiKey) -> None:
        """Raises KeyExists when the name is taken."""
        ...

    async def find_key(self, key_hash: str) -> ApiKey | None:
        ...

    async def list_keys(self) -> list[ApiKey]:
        ...

    async def revoke_key(self, name: str) -> bool:
        ...
