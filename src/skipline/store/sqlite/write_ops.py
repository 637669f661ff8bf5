"""The store's writes, as plain functions of a connection, run on the writer thread inside the
batch transaction (each in its own savepoint). Time comes from the injected clock, read when the
write actually runs, so leases and deadlines are measured from the moment of the change."""

from __future__ import annotations

import secrets
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from skipline.clock import Clock
from skipline.crashpoints import crash_point
from skipline.domain.errors import (
    KeyExists,
    OrderNotCancellable,
    OrderNotFound,
    OrderNotRequeueable,
)
from skipline.domain.models import ApiKey, Delivery, NewOrder, Order, Status
from skipline.store.sqlite.fair_share import advance_clocks, start_tags
from skipline.store.sqlite.rows import (
    Rows,
    delivery_from_row,
    encode_json,
    key_to_params,
    order_from_row,
)

Queries = dict[str, str]


def _rows(connection: sqlite3.Connection, sql: str, params: dict[str, Any]) -> list[sqlite3.Row]:
    """All rows at once, so no statement is left open across a savepoint or a commit."""
    return connection.execute(sql, params).fetchall()


def _count_moves(
    connection: sqlite3.Connection, queries: Queries, tiers: Iterable[str],
    before: Status, after: Status,
) -> int:
    """Keep order_counts in step: one order per entry of `tiers` went from `before` to
    `after`. Returns how many moved."""
    moved = Counter(tiers)
    for tier, n in moved.items():
        connection.execute(queries["count_moved_orders"], {
            "tier": tier, "before": before.value, "after": after.value, "n": n,
        })
    return moved.total()


def _tiers(cursor: sqlite3.Cursor) -> list[str]:
    """The tiers an UPDATE ... RETURNING tier touched (one entry per row)."""
    return [row[0] for row in cursor.fetchall()]


def submit(
    connection: sqlite3.Connection, queries: Queries, clock: Clock, new: NewOrder, payload: str
) -> tuple[Order, bool]:
    """Insert the order, or return the one already submitted under the same idempotency key."""
    if new.idempotency_key is not None:
        found = _rows(connection, queries["find_by_idempotency_key"],
                      {"owner": new.owner, "idempotency_key": new.idempotency_key})
        if found:
            return order_from_row(found[0]), False
    now = clock.now()
    overdue_at = new.overdue_from(now)
    (tag,) = start_tags(connection, queries, (new,))
    cursor = connection.execute(queries["insert_order"], {
        "id": new.id, "tier": new.tier, "priority": new.priority, "payload": payload,
        "duration": new.duration, "owner": new.owner, "now": now, "overdue_at": overdue_at,
        "idempotency_key": new.idempotency_key, "fingerprint": new.fingerprint,
        "customer": new.customer, "start_tag": tag, "callback_url": new.callback_url,
        "kind": new.kind, "not_before": new.not_before, "available_at": new.due_from(now),
    })
    assert cursor.lastrowid is not None
    connection.execute(queries["count_orders"], {
        "tier": new.tier, "status": Status.QUEUED.value, "n": 1,
    })
    crash_point("before_commit")
    return new.queued(cursor.lastrowid, now, overdue_at, tag), True


def submit_many(
    connection: sqlite3.Connection, items: list[tuple[NewOrder, str]], *,
    queries: Queries, clock: Clock,
) -> list[tuple[Order, bool]]:
    """Insert orders without idempotency keys, all with one statement; (order, True) each.
    `items` are (order, payload as JSON text)."""
    now = clock.now()
    overdue = [new.overdue_from(now) for new, _ in items]
    tags = start_tags(connection, queries, [new for new, _ in items])
    connection.executemany(queries["insert_orders"], [
        (new.id, new.tier, new.priority, payload, new.duration, new.owner, now, overdue_at,
         new.customer, tag, new.callback_url, new.kind, new.not_before, new.due_from(now))
        for (new, payload), overdue_at, tag in zip(items, overdue, tags, strict=True)])
    last_seq = connection.execute(queries["last_inserted_seq"]).fetchone()[0]
    for tier, n in Counter(new.tier for new, _ in items).items():
        connection.execute(queries["count_orders"], {
            "tier": tier, "status": Status.QUEUED.value, "n": n,
        })
    crash_point("before_commit")
    first_seq = last_seq - len(items) + 1
    return [
        (new.queued(first_seq + offset, now, overdue_at, tag), True)
        for offset, ((new, _), overdue_at, tag) in enumerate(
            zip(items, overdue, tags, strict=True))
    ]


def cancel(connection: sqlite3.Connection, queries: Queries, clock: Clock, order_id: str) -> Order:
    cancelled = _rows(connection, queries["cancel_order"], {"id": order_id, "now": clock.now()})
    if cancelled:
        order = order_from_row(cancelled[0])
        _count_moves(connection, queries, [order.tier], Status.QUEUED, Status.CANCELLED)
        return order
    if not _rows(connection, queries["order_status"], {"id": order_id}):
        raise OrderNotFound()
    raise OrderNotCancellable()


def requeue(
    connection: sqlite3.Connection, queries: Queries, clock: Clock, order_id: str
) -> Order:
    """Queue a failed or cancelled order again (Store.requeue)."""
    found = _rows(connection, queries["order_status"], {"id": order_id})
    if not found:
        raise OrderNotFound()
    before = Status(found[0]["status"])
    if before not in (Status.FAILED, Status.CANCELLED):
        raise OrderNotRequeueable()
    rows = _rows(connection, queries["requeue_order"], {"id": order_id, "now": clock.now()})
    order = order_from_row(rows[0])
    _count_moves(connection, queries, [order.tier], before, Status.QUEUED)
    return order


def claim_deliveries(
    connection: sqlite3.Connection, queries: Queries, clock: Clock, limit: int,
    lease_seconds: float,
) -> list[Delivery]:
    now = clock.now()
    rows = _rows(connection, queries["claim_callbacks"], {
        "now": now, "until": now + lease_seconds, "limit": limit})
    return sorted((delivery_from_row(row) for row in rows), key=lambda d: d.created_at)


def record_delivery(
    connection: sqlite3.Connection, queries: Queries, clock: Clock, order_id: str,
    error: str | None, retry_delay: float | None,
) -> None:
    next_at = None if retry_delay is None else clock.now() + retry_delay
    connection.execute(queries["record_callback"], {
        "order_id": order_id, "error": error, "next_at": next_at})


def claim(
    connection: sqlite3.Connection, queries: Queries, clock: Clock,
    worker_id: str, limit: int, lease_seconds: float, kinds: Sequence[str] | None = None,
) -> Rows:
    """Lease the orders the claim query picks with one UPDATE for all of them; every token is
    fresh (a random prefix per claim, then the order's seq). Returns their rows in claim order,
    as tuples: turning them into Leases is left to the event loop (leases_from_tuples)."""
    if limit <= 0:
        return [], []
    now = clock.now()
    connection.execute(queries["promote_due"], {"now": now})
    picked = [row["seq"] for row in _rows(connection, queries["claim_candidates"], {
        "now": now, "limit": limit, "kinds": None if kinds is None else encode_json(list(kinds)),
    })]
    if not picked:
        return [], []
    cursor = connection.cursor()
    cursor.row_factory = None
    rows = cursor.execute(queries["claim_orders"], {
        "seqs": encode_json(picked), "now": now, "token_prefix": secrets.token_hex(12),
        "worker_id": worker_id, "lease_expires_at": now + lease_seconds,
    }).fetchall()
    names = [entry[0] for entry in cursor.description]
    seq, tier = names.index("seq"), names.index("tier")
    position = {seq_number: index for index, seq_number in enumerate(picked)}
    rows.sort(key=lambda row: position[row[seq]])
    _count_moves(connection, queries, [row[tier] for row in rows], Status.QUEUED, Status.RUNNING)
    advance_clocks(connection, queries, names, rows)
    return names, rows


def heartbeat(
    connection: sqlite3.Connection, queries: Queries, clock: Clock,
    leases: Sequence[tuple[str, str]], lease_seconds: float,
) -> set[str]:
    expires = clock.now() + lease_seconds
    held = set()
    for order_id, token in leases:
        cursor = connection.execute(queries["extend_lease"], {
            "id": order_id, "token": token, "lease_expires_at": expires,
        })
        if cursor.rowcount:
            held.add(order_id)
    return held


def complete_many(
    connection: sqlite3.Connection, items: list[tuple[str, str, str]], *,
    queries: Queries, clock: Clock,
) -> list[bool]:
    """Record success for (order id, lease token, result JSON text) items, with one UPDATE for
    all of them; True for each item whose lease still held. An order named more than once (a
    stale token beside the current one) is settled in rounds, as if the items ran in order."""
    now = clock.now()
    if len({order_id for order_id, _, _ in items}) == len(items):  # the usual case: one round
        held = _complete_once(connection, queries, now, items)
        outcomes = [order_id in held for order_id, _, _ in items]
    else:
        outcomes = _complete_in_rounds(connection, queries, now, items)
    crash_point("mid_complete")
    return outcomes


def _complete_in_rounds(
    connection: sqlite3.Connection, queries: Queries, now: float,
    items: list[tuple[str, str, str]],
) -> list[bool]:
    outcomes = [False] * len(items)
    pending = list(enumerate(items))
    while pending:
        this_round: list[tuple[int, tuple[str, str, str]]] = []
        later: list[tuple[int, tuple[str, str, str]]] = []
        named: set[str] = set()
        for index, item in pending:
            (later if item[0] in named else this_round).append((index, item))
            named.add(item[0])
        held = _complete_once(connection, queries, now, [item for _, item in this_round])
        for index, (order_id, _, _) in this_round:
            outcomes[index] = order_id in held
        pending = later
    return outcomes


def _complete_once(
    connection: sqlite3.Connection, queries: Queries, now: float,
    items: list[tuple[str, str, str]],
) -> set[str]:
    """Complete items naming distinct orders; the ids whose lease held."""
    cursor = connection.execute(queries["complete_orders"], {"done": encode_json(items),
                                                             "now": now})
    held = dict(cursor.fetchall())
    _count_moves(connection, queries, held.values(), Status.RUNNING, Status.SUCCEEDED)
    return set(held)


def fail(
    connection: sqlite3.Connection, queries: Queries, clock: Clock,
    order_id: str, token: str, error: str, retry_delay: float | None,
) -> Status | None:
    """Queue again after `retry_delay` (keeping priority and seq), or fail for good."""
    now = clock.now()
    params: dict[str, Any] = {"id": order_id, "token": token, "error": error, "now": now}
    if retry_delay is None:
        after, query = Status.FAILED, "fail_order_for_good"
    else:
        after, query = Status.QUEUED, "fail_order_for_retry"
        params["available_at"] = now + retry_delay
    tiers = _tiers(connection.execute(queries[query], params))
    return after if _count_moves(connection, queries, tiers, Status.RUNNING, after) else None


def release(
    connection: sqlite3.Connection, queries: Queries, clock: Clock,
    order_ids_tokens: Sequence[tuple[str, str]],
) -> int:
    now = clock.now()
    tiers: list[str] = []
    for order_id, token in order_ids_tokens:
        cursor = connection.execute(queries["release_order"], {
            "id": order_id, "token": token, "now": now,
        })
        tiers.extend(_tiers(cursor))
    return _count_moves(connection, queries, tiers, Status.RUNNING, Status.QUEUED)


def rescue_expired(
    connection: sqlite3.Connection, queries: Queries, clock: Clock, max_rescues: int
) -> int:
    """Fail the expired orders already rescued `max_rescues` times, queue the others again."""
    params = {"now": clock.now(), "max_rescues": max_rescues}
    failed = _tiers(connection.execute(queries["fail_poisoned_orders"], params))
    requeued = _tiers(connection.execute(queries["requeue_expired_orders"], params))
    return (_count_moves(connection, queries, failed, Status.RUNNING, Status.FAILED)
            + _count_moves(connection, queries, requeued, Status.RUNNING, Status.QUEUED))


def prune_finished(
    connection: sqlite3.Connection, queries: Queries, clock: Clock, older_than: float,
    limit: int,
) -> int:
    """Delete at most `limit` finished orders older than `older_than` seconds (the trigger
    orders_uncounted_on_delete keeps order_counts right); how many were deleted."""
    if limit <= 0:
        return 0
    cursor = connection.execute(queries["prune_finished"], {
        "cutoff": clock.now() - older_than, "limit": limit,
    })
    return cursor.rowcount


def add_key(connection: sqlite3.Connection, queries: Queries, key: ApiKey) -> None:
    try:
        connection.execute(queries["insert_key"], key_to_params(key))
    except sqlite3.IntegrityError as exc:
        raise KeyExists(f"an API key named {key.name!r} already exists") from exc


def revoke_key(connection: sqlite3.Connection, queries: Queries, name: str) -> bool:
    return connection.execute(queries["revoke_key"], {"name": name}).rowcount == 1
