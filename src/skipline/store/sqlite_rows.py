"""Between SQLite rows and domain objects. Payloads and results are JSON text, never pickle."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from skipline.domain.errors import InvalidOrder
from skipline.domain.models import JSON, ApiKey, Lease, Order, Status

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
_STATUSES = {status.value: status for status in Status}


def encode_json(value: JSON, what: str = "payload") -> str:
    """JSON text of `value`; InvalidOrder if it is not JSON (checked before it reaches the
    writer, so a bad value fails alone rather than inside someone else's batch)."""
    if value is None:
        return "null"
    try:
        return _encoder.encode(value).decode("utf-8")
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidOrder(f"the {what} is not JSON-serialisable: {exc}") from exc


def decode_json(text: str | None) -> JSON:
    return None if text is None else msgspec.json.decode(text)


def order_from_row(row: sqlite3.Row) -> Order:
    return Order(
        id=row["id"],
        seq=row["seq"],
        tier=row["tier"],
        priority=row["priority"],
        status=Status(row["status"]),
        attempts=row["attempts"],
        rescues=row["rescues"],
        payload=decode_json(row["payload"]),
        duration=row["duration"],
        owner=row["owner"],
        created_at=row["created_at"],
        overdue_at=row["overdue_at"],
        available_at=row["available_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        result=decode_json(row["result"]),
        error=row["error"],
        idempotency_key=row["idempotency_key"],
    )


Rows = tuple[list[str], list[tuple[Any, ...]]]
"""Column names and plain tuple rows, as a claim hands them from the writer thread to the loop."""


def leases_from_tuples(rows: Rows) -> list[Lease]:
    """Leases from the tuple rows of `SELECT *`-shaped orders (RETURNING *) with their
    lease_token. Reading tuples by position costs half of order_from_row's lookups by name,
    which matters when a claim returns hundreds of rows; it runs on the event loop, so the
    writer thread is free for the next batch meanwhile."""
    names, tuples = rows
    if not tuples:
        return []
    column = {name: index for index, name in enumerate(names)}
    (seq, order_id, tier, priority, status, attempts, rescues, payload, duration, owner,
     created_at, overdue_at, available_at, started_at, finished_at, result, error,
     idempotency_key, lease_token) = (column[name] for name in (
        "seq", "id", "tier", "priority", "status", "attempts", "rescues", "payload",
        "duration", "owner", "created_at", "overdue_at", "available_at", "started_at",
        "finished_at", "result", "error", "idempotency_key", "lease_token"))
    decode = _decoder.decode
    return [Lease(Order(
        id=row[order_id], seq=row[seq], tier=row[tier], priority=row[priority],
        status=_STATUSES[row[status]], attempts=row[attempts], rescues=row[rescues],
        payload=None if row[payload] is None else decode(row[payload]),
        duration=row[duration], owner=row[owner], created_at=row[created_at],
        overdue_at=row[overdue_at], available_at=row[available_at],
        started_at=row[started_at], finished_at=row[finished_at],
        result=None if row[result] is None else decode(row[result]), error=row[error],
        idempotency_key=row[idempotency_key],
    ), row[lease_token]) for row in tuples]


def key_from_row(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        name=row["name"],
        tier=row["tier"],
        admin=bool(row["admin"]),
        key_hash=row["key_hash"],
        created_at=row["created_at"],
        revoked=bool(row["revoked"]),
    )


def key_to_params(key: ApiKey) -> dict[str, object]:
    return {
        "name": key.name, "tier": key.tier, "admin": int(key.admin), "key_hash": key.key_hash,
        "created_at": key.created_at, "revoked": int(key.revoked),
    }
