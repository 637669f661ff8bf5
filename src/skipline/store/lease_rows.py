"""Claimed rows -> Leases, shared by the SQLite and PostgreSQL stores.

A claim returns hundreds of `orders.*` rows with their lease token; reading each field by its
position, found once per batch, costs about half of a lookup by name per field, and this runs
for every order a worker takes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from skipline.domain.models import JSON, Lease, Order, Status

_STATUSES = {status.value: status for status in Status}

LEASE_COLUMNS = (
    "id", "seq", "tier", "priority", "status", "attempts", "rescues", "payload", "duration",
    "owner", "created_at", "overdue_at", "available_at", "started_at", "finished_at", "result",
    "error", "idempotency_key", "fingerprint", "customer", "start_tag", "lease_token", "kind",
    "not_before",
)


def as_is(value: Any) -> JSON:
    """For drivers that decode JSON columns themselves."""
    return value


def leases_from_rows(
    names: Sequence[str], rows: Iterable[Sequence[Any]], decode: Callable[[Any], JSON] = as_is,
) -> list[Lease]:
    """Leases from rows whose columns are `names` (at least LEASE_COLUMNS); `decode` turns a
    stored payload or result into its value (None stays None)."""
    at = {name: index for index, name in enumerate(names)}
    (order_id, seq, tier, priority, status, attempts, rescues, payload, duration, owner,
     created_at, overdue_at, available_at, started_at, finished_at, result, error,
     idempotency_key, fingerprint, customer, start_tag, token, kind, not_before) = (
         at[name] for name in LEASE_COLUMNS)
    return [Lease(Order(
        id=row[order_id], seq=row[seq], tier=row[tier], priority=row[priority],
        status=_STATUSES[row[status]], attempts=row[attempts], rescues=row[rescues],
        payload=decode(row[payload]), duration=row[duration], owner=row[owner],
        created_at=row[created_at], overdue_at=row[overdue_at],
        available_at=row[available_at], started_at=row[started_at],
        finished_at=row[finished_at], result=decode(row[result]), error=row[error],
        idempotency_key=row[idempotency_key], fingerprint=row[fingerprint],
        customer=row[customer], start_tag=row[start_tag], kind=row[kind],
        not_before=row[not_before],
    ), row[token]) for row in rows]
