"""The worker registry's records: which worker processes are alive, and how busy they are.

Each pool signs in when it starts (`WorkerSignIn`) and then beats on the heartbeat cadence; the
store keeps one `WorkerProcess` per pool, expired like a lease (invariant 4
(docs/architecture.md)): a row whose last heartbeat is older than its expiry is a process that
is gone, whatever the row says, and is deleted by the lease reaper.
"""

from __future__ import annotations

from dataclasses import dataclass

from skipline.domain.models import Order


def order_kind(order: Order) -> str:
    """The kind an order is counted under (metrics, the registry): the one place that says."""
    return order.kind


@dataclass(frozen=True, slots=True)
class WorkerSignIn:
    """What a pool tells the registry when it starts: who it is and what it can take."""

    id: str
    host: str
    pid: int
    kinds: tuple[str, ...]
    slots_total: int


@dataclass(frozen=True, slots=True)
class WorkerProcess:
    """One live worker pool as the registry holds it. Times are seconds since the epoch on
    the store's clock (the database's `now()` for PostgreSQL)."""

    id: str
    host: str
    pid: int
    kinds: tuple[str, ...]
    slots_busy: int
    slots_total: int
    started_at: float
    last_heartbeat: float
