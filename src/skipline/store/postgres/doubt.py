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

How long callers wait. The callers of a submission in doubt are HTTP clients, promised an
answer within 2 s even during an outage, and settling can take longer than that (a database
restart takes seconds, and until it is back nothing can be read). So they wait for the outcome
only until ANSWER_SECONDS after they called (LateSettlements.answer_by): settled by then,
they get it (the order, or "not stored"); otherwise OutcomeUnknown, which carries the order's
id so the client can ask for it later, and settling goes on without them for up to
IN_DOUBT_SECONDS, so that the old backend is ended and the log says what became of the orders.
A write that is only slow (a slow network) is not cut when its callers' time is up: they are
answered "unknown" then, and the write goes on to the operation timeout on its connection, which
stays in the pool; what it stored is logged. (Cutting it dropped a connection that worked, and a
new one costs several round trips.)
Completions are made by workers, which may wait: their callers wait up to IN_DOUBT_SECONDS.
When the server cannot be reached, or the backend does not go, within IN_DOUBT_SECONDS, the
outcome stays unknown. A client that retries with the same Idempotency-Key is safe either way:
it gets the stored order back, or stores it once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg

from skipline.domain.errors import StoreUnavailable

IN_DOUBT_SECONDS = 10.0
"""How long settling a write in doubt may go on: long enough for a database restart, crash
recovery included (several seconds). The callers of a completion in doubt (workers) wait that
long for the outcome; those of a submission only until ANSWER_SECONDS."""
ANSWER_SECONDS = 1.5
"""Seconds after they called by which the callers of a submission are answered, settled or not
(OutcomeUnknown): counted from the call, not from the write, because a call may wait behind a
batch being written — a few milliseconds when the store is healthy, all of that batch's time
when the network has gone silent. The contract answers POST /orders within 2 s while the
database is down; the other half second is for what comes before the store (admission, the
body) and after it (the response), with room for a busy event loop. A write that is in doubt only
after that (it timed out, at OPERATION_TIMEOUT) is answered as soon as it is: never later than
the same write's answer would have been had it simply failed."""
FIRST_PAUSE = 0.05
LAST_PAUSE = 0.5
"""Pauses between attempts, doubling from the first to the last."""

OUTCOME_UNKNOWN = (
    "the PostgreSQL database went away while this write was being committed, and whether it "
    "was committed could not be learnt in time; retrying with the same Idempotency-Key is safe"
)
ORDER_OUTCOME_UNKNOWN = (
    "the PostgreSQL database went away while this order was being committed, and whether it "
    "was could not be learnt in time: once the database is back, GET the order (404: it was "
    "not stored) or retry with the same Idempotency-Key"
)

log = logging.getLogger(__name__)

Connect = Callable[[], AbstractAsyncContextManager[Any]]
"""Opens a store connection (turning outages into StoreUnavailable)."""
T = TypeVar("T")


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


class LateSettlements:
    """Settlements that go on after their callers have been answered. They are held here
    because the event loop keeps only weak references to tasks."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()

    async def answer_by(
        self, deadline: float, settle: Coroutine[Any, Any, T], unknown: Callable[[], T],
    ) -> T:
        """What `settle` returns if it is done by `deadline` (event loop time); else
        `unknown()`, and `settle` carries on alone. Nothing is answered twice: once this has
        returned, what `settle` finds is only logged (by `settle` itself)."""
        task = asyncio.create_task(settle, name="skipline-pg-settle-late")
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            if remaining > 0:
                await asyncio.wait({task}, timeout=remaining)
        except asyncio.CancelledError:
            task.cancel()  # the loop is ending: nobody is left to tell
            raise
        if task.done():
            return task.result()
        self._running.add(task)
        task.add_done_callback(self._finished)
        return unknown()

    async def stop(self) -> None:
        """At close: the callers were answered long ago and only the log is left to tell, so
        what is still being settled is dropped rather than allowed to hold up the close."""
        running = list(self._running)
        if running:
            log.warning("closing with %d write(s) still in doubt; see the log above for their"
                        " order ids", len(running))
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        """A late settlement's end; a failure has nobody to go to but the log."""
        self._running.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("settling a write in doubt failed", exc_info=error)


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
