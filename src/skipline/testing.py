"""Helpers for tests that drive a skipline store directly: build orders, submit many at once,
claim everything; and a free port for tests, fault scenarios and benchmarks that start a
server. The fake clock lives in `skipline.clock`; the memory store in `skipline.store.memory`."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Mapping, Sequence

from skipline.domain.models import DEFAULT_KIND, DEFAULT_TIERS, JSON, Lease, NewOrder, Order, Tier
from skipline.store.base import Store


def make_new_order(
    tier: str = "regular",
    *,
    priority: int | None = None,
    payload: JSON = None,
    duration: float = 0.0,
    owner: str = "",
    idempotency_key: str | None = None,
    max_wait: float | None = None,
    tiers: Mapping[str, Tier] = DEFAULT_TIERS,
    fingerprint: str | None = None,
    customer: str = "",
    weight: int = 1,
    fifo: bool = False,
    kind: str = DEFAULT_KIND,
    not_before: float | None = None,
) -> NewOrder:
    """A NewOrder with a fresh random id. `priority` defaults to the tier's own (from `tiers`).
    Unlike the service, `max_wait` is NOT taken from the tier: None means never overdue, so a
    test only sees overdue orders when it asks for them."""
    if priority is None:
        if tier not in tiers:
            raise ValueError(f"unknown tier {tier!r}: pass priority= or tiers=")
        priority = tiers[tier].priority
    return NewOrder(
        id=str(uuid.uuid4()), tier=tier, priority=priority, payload=payload,
        duration=duration, owner=owner, idempotency_key=idempotency_key, max_wait=max_wait,
        fingerprint=fingerprint, customer=customer, weight=weight, fifo=fifo, kind=kind,
        not_before=not_before,
    )


async def submit_all(store: Store, orders: Sequence[NewOrder], chunk: int = 250) -> list[Order]:
    """Submit `orders` concurrently, `chunk` at a time (so a group-committing store shares its
    commits), and return them in the order the store acknowledged them. Every order of one
    chunk is acknowledged before the next chunk is sent."""
    acknowledged: list[Order] = []

    async def submit_one(new: NewOrder) -> None:
        order, _ = await store.submit(new)
        acknowledged.append(order)

    for start in range(0, len(orders), chunk):
        await asyncio.gather(*(submit_one(new) for new in orders[start:start + chunk]))
    return acknowledged


async def claim_all(
    store: Store, worker_id: str = "test-worker", batch: int = 100, lease_seconds: float = 60.0,
    kinds: Sequence[str] | None = None,
) -> list[Lease]:
    """Claim every ready order (of `kinds`; None: any), `batch` at a time, in claim order."""
    leases: list[Lease] = []
    while claimed := await store.claim(worker_id, batch, lease_seconds, kinds):
        leases.extend(claimed)
    return leases


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now on `host` (the kernel picks it)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port
