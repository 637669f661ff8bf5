"""The one SQLite writer: a dedicated thread that runs every write of the store.

Whatever writes are waiting when the thread becomes free run together in ONE transaction (group
commit), so concurrent submissions share one fsync. The loop hands each write over with a
non-blocking queue put; the thread wakes once per batch and sends every result of the batch back
with one callback, never one thread hop per statement. Each write runs inside its own
SAVEPOINT: one that fails (a constraint, a domain error) is undone alone and the rest of its batch
still commits. A write's future resolves only after the COMMIT holding it; if that COMMIT fails
(disk full, I/O error), every write of the batch gets StoreUnavailable and none is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from skipline.domain.errors import SkiplineError, StoreUnavailable

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]

MAX_BATCH = 1000
"""Most writes in one transaction; bounds how long one batch holds the write lock."""


@dataclass(slots=True)
class _Job:
    work: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    wakes_workers: bool


@dataclass(slots=True)
class _Outcome:
    value: Any = None
    error: BaseException | None = None


_STOP = object()
"""Put on the queue by stop(): the thread finishes what was queued before it, then exits."""


def unavailable(exc: sqlite3.Error, doing: str = "write to") -> StoreUnavailable:
    """A sqlite3 error as the domain sees it, with the reason kept for the operator."""
    return StoreUnavailable(f"could not {doing} the SQLite database: {exc}")


def as_domain_error(exc: Exception) -> Exception:
    """Domain errors pass through; sqlite errors become StoreUnavailable; bugs stay bugs."""
    if isinstance(exc, SkiplineError):
        return exc
    if isinstance(exc, sqlite3.Error):
        return unavailable(exc)
    return exc


class SqliteWriter:
    """Runs writes on one thread with its own connection, batching them into transactions."""

    def __init__(
        self, connect: Callable[[], sqlite3.Connection], on_work: Callable[[], None]
    ) -> None:
        self._connect = connect
        self._on_work = on_work
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._accepting = False
        self.committed_batches = 0
        """Transactions committed so far; fewer than writes when group commit shares them."""

    @property
    def running(self) -> bool:
        return self._accepting and self._thread is not None and self._thread.is_alive()

    async def start(self) -> None:
        """Start the thread; returns once its connection is open and migrated."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        ready: asyncio.Future[None] = loop.create_future()
        self._stopped = loop.create_future()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="skipline-sqlite-writer", daemon=True
        )
        self._thread.start()
        await ready
        self._accepting = True

    async def run(self, work: Work[T], wakes_workers: bool = False) -> T:
        """Run `work(connection)` in the next batch; returns after that batch committed.
        `wakes_workers` says the write may make an order ready (wakes wait_for_work)."""
        if not self.running or self._loop is None:
            raise StoreUnavailable("the SQLite store is not open")
        future: asyncio.Future[T] = self._loop.create_future()
        self._queue.put(_Job(work, future, wakes_workers))
        return await future

    async def stop(self) -> None:
        """Finish every write queued so far, then close the connection. Idempotent."""
        if not self._accepting or self._stopped is None:
            return
        self._accepting = False
        self._queue.put(_STOP)
        await self._stopped

    # --- on the writer thread --------------------------------------------------------------
    def _serve(self, ready: asyncio.Future[None]) -> None:
        try:
            connection = self._connect()
        except Exception as exc:
            self._call(_settle_one, ready, _Outcome(error=_startup_error(exc)))
            self._call(_settle_one, self._stopped, _Outcome())
            return
        self._call(_settle_one, ready, _Outcome())
        try:
            self._serve_batches(connection)
        finally:
            connection.close()
            self._call(_settle_one, self._stopped, _Outcome())

    def _serve_batches(self, connection: sqlite3.Connection) -> None:
        stopping = False
        while not stopping:
            jobs, stopping = self._take_batch()
            if jobs:
                outcomes, committed = run_batch(connection, [job.work for job in jobs])
                self._call(self._settle, jobs, outcomes, committed)

    def _take_batch(self) -> tuple[list[_Job], bool]:
        """Block for the first write, then take whatever else is already waiting."""
        jobs: list[_Job] = []
        item = self._queue.get()
        while True:
            if item is _STOP:
                return jobs, True
            assert isinstance(item, _Job)
            jobs.append(item)
            if len(jobs) >= MAX_BATCH:
                return jobs, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return jobs, False

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        # RuntimeError: the loop is closed, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, *args)

    # --- back on the event loop ------------------------------------------------------------
    def _settle(self, jobs: list[_Job], outcomes: list[_Outcome], committed: bool) -> None:
        if committed:
            self.committed_batches += 1
            pairs = zip(jobs, outcomes, strict=True)
            if any(job.wakes_workers and outcome.error is None for job, outcome in pairs):
                self._on_work()
        for job, outcome in zip(jobs, outcomes, strict=True):
            _settle_one(job.future, outcome)


def _settle_one(future: asyncio.Future[Any] | None, outcome: _Outcome) -> None:
    if future is None or future.done():
        return
    if outcome.error is None:
        future.set_result(outcome.value)
    else:
        future.set_exception(outcome.error)


def _startup_error(exc: Exception) -> Exception:
    if isinstance(exc, sqlite3.Error):
        return unavailable(exc, "open")
    return exc


def run_batch(
    connection: sqlite3.Connection, works: list[Callable[[sqlite3.Connection], Any]]
) -> tuple[list[_Outcome], bool]:
    """One transaction holding every work, each in its own savepoint. Returns the outcomes and
    whether the transaction committed; if it did not, every outcome is StoreUnavailable."""
    try:
        connection.execute("BEGIN IMMEDIATE")
        outcomes = []
        for work in works:
            outcomes.append(_run_in_savepoint(connection, work))
            if not connection.in_transaction:
                # SQLite rolled the whole transaction back (disk full, I/O error): the works
                # before this one are gone too, so nothing of the batch may be acknowledged.
                raise _BatchLost(outcomes[-1].error)
        connection.execute("COMMIT")
    except (sqlite3.Error, _BatchLost) as exc:
        _rollback_quietly(connection)
        return [_Outcome(error=_batch_error(exc)) for _ in works], False
    return outcomes, True


class _BatchLost(Exception):
    def __init__(self, cause: BaseException | None) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _batch_error(exc: Exception) -> StoreUnavailable:
    cause = exc.cause if isinstance(exc, _BatchLost) else exc
    if isinstance(cause, StoreUnavailable):
        return cause
    if isinstance(cause, sqlite3.Error):
        return unavailable(cause)
    return StoreUnavailable(f"the SQLite transaction was rolled back: {cause}")


def _run_in_savepoint(
    connection: sqlite3.Connection, work: Callable[[sqlite3.Connection], Any]
) -> _Outcome:
    connection.execute("SAVEPOINT work")
    try:
        value = work(connection)
    except Exception as exc:
        if connection.in_transaction:
            connection.execute("ROLLBACK TO work")
            connection.execute("RELEASE work")
        return _Outcome(error=as_domain_error(exc))
    connection.execute("RELEASE work")
    return _Outcome(value=value)


def _rollback_quietly(connection: sqlite3.Connection) -> None:
    # If even ROLLBACK fails, the next BEGIN reports a connection that is truly broken.
    if connection.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")
