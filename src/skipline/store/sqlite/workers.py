"""The worker registry on SQLite: writes go through the writer like every other write, the
list is one read. Times come from the store's clock, as for leases."""

from __future__ import annotations

import json
import sqlite3

from skipline.clock import Clock
from skipline.domain.workers import WorkerProcess, WorkerSignIn

Queries = dict[str, str]


def register(
    connection: sqlite3.Connection, queries: Queries, clock: Clock, worker: WorkerSignIn,
    expiry_seconds: float,
) -> None:
    now = clock.now()
    connection.execute(queries["register_worker"], {
        "id": worker.id, "host": worker.host, "pid": worker.pid,
        "kinds": json.dumps(list(worker.kinds)), "slots_total": worker.slots_total,
        "now": now, "expires_at": now + expiry_seconds,
    })


def beat(
    connection: sqlite3.Connection, queries: Queries, clock: Clock, worker_id: str,
    slots_busy: int, expiry_seconds: float,
) -> bool:
    now = clock.now()
    cursor = connection.execute(queries["beat_worker"], {
        "id": worker_id, "slots_busy": slots_busy, "now": now,
        "expires_at": now + expiry_seconds,
    })
    return cursor.rowcount == 1


def remove(connection: sqlite3.Connection, queries: Queries, worker_id: str) -> bool:
    return connection.execute(queries["remove_worker"], {"id": worker_id}).rowcount == 1


def prune(connection: sqlite3.Connection, queries: Queries, clock: Clock) -> int:
    return connection.execute(queries["prune_workers"], {"now": clock.now()}).rowcount


def any_expired(connection: sqlite3.Connection, queries: Queries, now: float) -> bool:
    return connection.execute(queries["any_expired_worker"], {"now": now}).fetchone() is not None


def live(connection: sqlite3.Connection, queries: Queries, now: float) -> list[WorkerProcess]:
    rows = connection.execute(queries["live_workers"], {"now": now}).fetchall()
    return [
        WorkerProcess(
            id=row["id"], host=row["host"], pid=row["pid"], kinds=tuple(json.loads(row["kinds"])),
            slots_busy=row["slots_busy"], slots_total=row["slots_total"],
            started_at=row["started_at"], last_heartbeat=row["last_heartbeat"],
        )
        for row in rows
    ]
