"""The store's reads, as plain functions of a (read-only) connection. Each reads everything it
needs at once, so no read transaction stays open to hold back WAL checkpoints."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence

from skipline.domain.fairness import GroupKey
from skipline.domain.models import (
    ApiKey,
    Delivery,
    Order,
    OrderQuery,
    QueueHealth,
    StoreStats,
    TierCounts,
)
from skipline.domain.reporting import (
    BUSIEST_GROUPS,
    LONGEST_WAITING,
    RECENT_WAITS,
    THROUGHPUT_WINDOW,
)
from skipline.domain.scheduling import DUE_LOOKAHEAD, earliest_due
from skipline.store import health
from skipline.store.sqlite.rows import delivery_from_row, key_from_row, order_from_row

Queries = dict[str, str]

NO_CURSOR = 2**63 - 1
"""Above every seq: the first page of a listing."""


def get(connection: sqlite3.Connection, queries: Queries, order_id: str) -> Order | None:
    row = connection.execute(queries["get_order"], {"id": order_id}).fetchone()
    return None if row is None else order_from_row(row)


def list_orders(connection: sqlite3.Connection, queries: Queries, query: OrderQuery) -> list[Order]:
    """Newest first; the owner's own index when there is an owner, else the primary key."""
    if query.limit <= 0:
        return []
    name = "list_orders" if query.owner is None else "list_owner_orders"
    rows = connection.execute(queries[name], {
        "owner": query.owner,
        "status": None if query.status is None else query.status.value,
        "tier": query.tier,
        "before_seq": NO_CURSOR if query.before_seq is None else query.before_seq,
        "limit": query.limit,
        "customer": query.customer,
        "kind": query.kind,
    }).fetchall()
    return [order_from_row(row) for row in rows]


def deliveries(
    connection: sqlite3.Connection, queries: Queries, order_ids: list[str]
) -> dict[str, Delivery]:
    rows = connection.execute(queries["find_callbacks"], {"ids": json.dumps(order_ids)})
    return {row["order_id"]: delivery_from_row(row) for row in rows.fetchall()}


def final_among(
    connection: sqlite3.Connection, queries: Queries, order_ids: list[str]
) -> list[str]:
    """Which of `order_ids` are final: one statement, one primary-key lookup per id."""
    rows = connection.execute(queries["final_among"], {"ids": json.dumps(order_ids)})
    return [row[0] for row in rows.fetchall()]


def next_due(
    connection: sqlite3.Connection, queries: Queries, kinds: Sequence[str] | None,
) -> float | None:
    """When the first waiting order of `kinds` is due (or sooner): a walk of at most
    DUE_LOOKAHEAD entries of orders_waiting."""
    rows = connection.execute(queries["next_due"], {"limit": DUE_LOOKAHEAD}).fetchall()
    return earliest_due([(row["available_at"], row["kind"]) for row in rows], kinds)


def queued_counts(connection: sqlite3.Connection, queries: Queries) -> dict[str, int]:
    """From the per-tier counters the writes keep, never from the orders table."""
    return {row["tier"]: row["n"] for row in connection.execute(queries["queued_counts"])}


def stats(connection: sqlite3.Connection, queries: Queries, now: float) -> StoreStats:
    counts: dict[str, dict[str, int]] = {}
    for row in connection.execute(queries["status_counts"]).fetchall():
        counts.setdefault(row["tier"], {})[row["status"]] = row["n"]
    kinds: dict[str, dict[str, int]] = {}
    for row in connection.execute(queries["kind_counts"]).fetchall():
        kinds.setdefault(row["kind"], {})[row["status"]] = row["n"]
    since = now - THROUGHPUT_WINDOW
    finished = connection.execute(queries["finished_since"], {"since": since}).fetchone()[0]
    return StoreStats(
        counts={tier: TierCounts(**by_status) for tier, by_status in counts.items()},
        recent_waits=_recent_waits(connection, queries["recent_waits"], "tier", counts),
        finished_last_minute=finished,
        kinds={kind: TierCounts(**by_status) for kind, by_status in kinds.items()},
        kind_waits=_recent_waits(connection, queries["kind_recent_waits"], "kind", kinds),
    )


def queue_health(
    connection: sqlite3.Connection, queries: Queries, now: float, window: float,
) -> QueueHealth:
    """Store.queue_health: due orders per tier and kind, the busiest groups, outcomes."""
    counts = connection.execute(queries["queued_health"], {"now": now}).fetchall()

    def longest(query: str, names: set[str]) -> dict[str, list[float]]:
        return {name: [age for (age,) in connection.execute(queries[query], {
            "now": now, "name": name, "limit": LONGEST_WAITING}).fetchall()] for name in names}

    waiting = health.Waiting(longest("longest_waiting", {row["tier"] for row in counts}),
                             longest("longest_waiting_of_kind", {row["kind"] for row in counts}))
    groups = connection.execute(
        queries["busiest_groups"], {"now": now, "limit": BUSIEST_GROUPS}).fetchall()
    finished = {row["status"]: row["n"] for row in connection.execute(
        queries["finished_by_status"], {"since": now - window}).fetchall()}
    return health.queue_health(counts, waiting, groups, finished)


def _recent_waits(
    connection: sqlite3.Connection, sql: str, parameter: str, names: Iterable[str],
) -> dict[str, list[float]]:
    """The waits of the most recently started orders of each tier or kind in `names`."""
    waits = {}
    for name in names:
        found = [row[0] for row in connection.execute(
            sql, {parameter: name, "limit": RECENT_WAITS}).fetchall()]
        if found:
            waits[name] = found
    return waits


def fair_position(
    connection: sqlite3.Connection, queries: Queries, priority: int, group: GroupKey,
) -> tuple[int, int]:
    """(virtual time of `priority`, finish tag of `group`), 0 for what was never written."""
    tier, owner, customer = group
    clock = connection.execute(queries["fair_clock"], {"priority": priority}).fetchone()
    finish = connection.execute(queries["fair_group_finish"], {
        "tier": tier, "owner": owner, "customer": customer}).fetchone()
    return (0 if clock is None else clock[0]), (0 if finish is None else finish[0])


def ping(connection: sqlite3.Connection, queries: Queries) -> None:
    connection.execute(queries["ping"]).fetchone()


def find_key(connection: sqlite3.Connection, queries: Queries, key_hash: str) -> ApiKey | None:
    row = connection.execute(queries["find_key"], {"key_hash": key_hash}).fetchone()
    return None if row is None else key_from_row(row)


def list_keys(connection: sqlite3.Connection, queries: Queries) -> list[ApiKey]:
    return [key_from_row(row) for row in connection.execute(queries["list_keys"]).fetchall()]
