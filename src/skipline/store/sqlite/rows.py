"""Between SQLite rows and domain objects. Payloads and results are JSON text, never pickle."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from skipline.domain.errors import InvalidOrder
from skipline.domain.models import JSON, ApiKey, Delivery, Lease, Order, Status, past_runs
from skipline.store.lease_rows import leases_from_rows

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


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
    return None if text is None else _decoder.decode(text)


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
        fingerprint=row["fingerprint"],
        customer=row["customer"],
        start_tag=row["start_tag"],
        callback_url=row["callback_url"],
        history=past_runs(decode_json(row["history"])),
        kind=row["kind"],
        not_before=row["not_before"],
    )


def delivery_from_row(row: sqlite3.Row) -> Delivery:
    return Delivery(
        order_id=row["order_id"], url=row["url"], status=row["status"],
        attempts=row["attempts"], last_error=row["last_error"], created_at=row["created_at"],
        next_at=row["next_at"],
    )


Rows = tuple[list[str], list[tuple[Any, ...]]]
"""Column names and plain tuple rows, as a claim hands them from the writer thread to the loop."""


def leases_from_tuples(rows: Rows) -> list[Lease]:
    """Leases from the tuple rows of `SELECT *`-shaped orders (RETURNING *) with their
    lease_token; run on the event loop, so the writer thread is free for the next batch."""
    names, tuples = rows
    return leases_from_rows(names, tuples, decode_json) if tuples else []


def key_from_row(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        name=row["name"],
        tier=row["tier"],
        admin=bool(row["admin"]),
        key_hash=row["key_hash"],
        created_at=row["created_at"],
        revoked=bool(row["revoked"]),
        customers=bool(row["customers"]),
        weight=row["weight"],
    )


def key_to_params(key: ApiKey) -> dict[str, object]:
    return {
        "name": key.name, "tier": key.tier, "admin": int(key.admin), "key_hash": key.key_hash,
        "created_at": key.created_at, "revoked": int(key.revoked),
        "customers": int(key.customers), "weight": key.weight,
    }
