"""Writes whose commit is in doubt, and how the PostgreSQL store learns their outcome.

A write is in doubt when its connection fails after the statement may have reached the server:
the server may have committed it and lost only the reply (it crashed or was stopped at that
moment, the network dropped the answer, or the client stopped waiting). Calling that "unavailable"
can be a lie — a 503 for an order that is stored and will run — so the store settles it: it reads
the rows the write would have made, on a fresh connection, once that read can be trusted.

When "not there" can be trusted. A read that does not find the write's rows is final only if
the transaction that wrote them can no longer commit. That holds exactly when the server
process (backend) that ran it no longer exists, and then a fresh snapshot shows the outcome:
- The server crashed or was stopped (`pg_ctl -m immediate`, the postgres_restart scenario):
  every backend is gone. Once it is back, recovery has replayed exactly the transactions whose
  commit record reached the disk — with synchronous_commit=on, the only ones that ever became
  visible or were reported committed — and no other can ever appear.
- The backend still exists (a cut network; a client that gave up while the server was still
  working, waiting on a lock or a slow disk): its transaction may commit at any moment, so a
  read saying "absent" now could be wrong a millisecond later. It is therefore told to
  terminate (pg_terminate_backend; allowed on sessions of one's own role) and we wait until
  it is gone. Termination cannot cut a commit short (a backend holds interrupts while it
  commits), and a backend rolls back its open transaction before it leaves pg_stat_activity,
  so once it is gone its transaction is over, committed or rolled back.
- "Gone" and the read are separate statements, in that order: a statement reads with the
  snapshot taken when it starts, so one statement could see the backend gone and yet miss the
  commit it made while the statement was running.
- A backend is named by its pid and its start time, read when our connection opened: pids are
  reused, and terminating a stranger's session would be wrong.
Assumed: the fresh connection reaches the same server, or one that replayed all of its WAL (a
failover to an asynchronous standby can lose commits that no client-side check can bring back),
and each store connection is one server session (no transaction-pooling proxy in between).
With durability "normal" (synchronous_commit=off) a commit is visible before it is on disk, and
a crash can still take back what the read found: the same trade that mode makes for every
acknowledgement.

When the server cannot be reached, or the backend does not go, within IN_DOUBT_SECONDS, the
outcome stays unknown and the caller is told the store is unavailable, with a detail saying
so. A client that retries with the same Idempotency-Key is safe either way: it gets the stored
order back, or stores it once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import asyncpg

from skipline.domain.errors import StoreUnavailable

IN_DOUBT_SECONDS = 10.0
"""How long the callers of an in-doubt write may wait for its outcome. Longer than the two
seconds in which an outage is otherwise reported, on purpose: a database restart, crash
recovery included, takes several seconds, and answering before the database is back gives
exactly the answer settling exists to avoid. Only the callers of the batch in doubt wait; the
others are told about the outage at once."""
FIRST_PAUSE = 0.05
LAST_PAUSE = 0.5
"""Pauses between attempts, doubling from the first to the last."""

OUTCOME_UNKNOWN = (
    "the PostgreSQL database went away while this write was being committed, and whether it "
    "was committed could not be learnt in time; retrying with the same Idempotency-Key is safe"
)

log = logging.getLogger(__name__)

Connect = Callable[[], AbstractAsyncContextManager[Any]]
"""Opens a store connection (turning outages into StoreUnavailable)."""


@dataclass(frozen=True, slots=True)
class Backend:
    """The server process behind one connection: its pid and when it started."""

    pid: int
    started: float


class CommitInDoubt(Exception):
    """The connection failed after the statement may have reached `backend`: it may or may not
    have committed."""

    def __init__(self, backend: Backend) -> None:
        super().__init__(f"a commit on server process {backend.pid} is in doubt")
        self.backend = backend


class TrackedConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg has no types
    """A pooled connection that knows its server process (set once, when it opens)."""

    backend: Backend | None = None


async def identify_backend(connection: Any, query: str) -> None:
    """Remember which server process serves `connection` (part of the pool's `init`)."""
    row = await connection.fetchrow(query)
    connection.backend = Backend(row["pid"], row["backend_start"])


async def read_once_settled(
    connect: Connect, queries: Mapping[str, str], backend: Backend, name: str, *args: Any,
    seconds: float = IN_DOUBT_SECONDS,
) -> list[Any] | None:
    """The rows of query `name`, read once `backend` is gone (so the read is final); None if
    that could not be done within `seconds`."""
    log.warning("a write on server process %d is in doubt; settling it", backend.pid)
    pause = FIRST_PAUSE
    started = asyncio.get_running_loop().time()
    try:
        async with asyncio.timeout(seconds):
            while (rows := await read_if_gone(connect, queries, backend, name, args)) is None:
                await asyncio.sleep(pause)
                pause = min(2 * pause, LAST_PAUSE)
    except TimeoutError:
        log.error("a write on server process %d is still in doubt after %.1f s: reported as "
                  "unknown", backend.pid, seconds)
        return None
    elapsed = asyncio.get_running_loop().time() - started
    log.warning("a write on server process %d was settled in %.2f s", backend.pid, elapsed)
    return rows


async def read_if_gone(
    connect: Connect, queries: Mapping[str, str], backend: Backend, name: str,
    args: tuple[Any, ...],
) -> list[Any] | None:
    """One attempt: the rows if `backend` is gone; None if it is still there (it has just been
    told to terminate) or the database cannot be reached."""
    try:
        async with connect() as connection:
            still_there = await connection.fetchval(
                queries["end_backend"], backend.pid, backend.started,
            )
            if still_there is not None:
                return None
            return list(await connection.fetch(queries[name], *args))
    except StoreUnavailable:
        return None
