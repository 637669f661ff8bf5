"""The one SQLite writer: a dedicated thread that runs every write of the store.

Whatever writes are waiting when the thread becomes free run together in ONE transaction (group
commit, see batch.py), so concurrent submissions share one fsync. The loop collects the
writes of one loop iteration and hands them over in one queue put, so the thread wakes once per
iteration rather than once per write (on a single core each wake-up also costs a GIL hand-over);
the thread sends every result of a batch back with one callback, never one thread hop per
statement. A write's future resolves only after the COMMIT holding it; a failing write fails
alone, and a failed COMMIT fails every write of its batch. While a worker waits for work, the
thread also looks for other processes' commits between batches (foreign_commits.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from skipline.domain.errors import StoreUnavailable
from skipline.store.sqlite.batch import Many, Outcome, Work, Write, run_batch, unavailable
from skipline.store.sqlite.foreign_commits import LOOK_SECONDS, ForeignCommits

T = TypeVar("T")

MAX_BATCH = 1000
"""Most writes in one transaction; bounds how long one batch holds the write lock."""
LINGER_SECONDS = 0.001
"""How long a write that may wait (a worker's claim or completion) waits for company while
urgent writes (submissions) keep coming; see SqliteWriter.enqueue."""
BUSY_WINDOW_SECONDS = 0.01
"""Urgent writes this recent mean more are on their way."""


@dataclass(slots=True)
class _Job(Write):
    future: asyncio.Future[Any]
    wakes_workers: bool


_STOP = object()
"""Put on the queue by stop(): the thread finishes what was queued before it, then exits."""
_LOOK = object()
"""Put on the queue when a first worker starts waiting: the thread, maybe blocked without a
time limit, starts looking for other processes' commits."""


class SqliteWriter:
    """Runs writes on one thread with its own connection, batching them into transactions."""

    def __init__(
        self, connect: Callable[[], sqlite3.Connection], on_work: Callable[[], None]
    ) -> None:
        self._connect = connect
        self._on_work = on_work
        self._queue: queue.SimpleQueue[list[_Job] | object] = queue.SimpleQueue()
        self._pending: list[_Job] = []
        """Writes of the current loop iteration, not yet handed to the thread (loop side)."""
        self._hand_over_soon = False
        self._hand_over_later: asyncio.TimerHandle | None = None
        self._last_urgent = float("-inf")
        self._carried: list[_Job] = []
        """Writes taken from the queue beyond MAX_BATCH, for the next batch (thread side)."""
        self._stop_seen = False
        self._foreign = ForeignCommits()
        self._serving = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._accepting = False
        self.committed_batches = 0
        """Transactions committed so far; fewer than writes when group commit shares them."""

    @property
    def running(self) -> bool:
        """Accepting writes, with a live thread (a flag the thread clears as it ends: checking
        Thread.is_alive on every write cost more than queueing the write)."""
        return self._accepting and self._serving

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

    async def run(self, work: Work[T], wakes_workers: bool = False, urgent: bool = True) -> T:
        """Run `work(connection)` in the next batch; returns after that batch committed.
        `wakes_workers` says the write may make an order ready (wakes wait_for_work); `urgent`
        is False for writes that may wait a moment for company (see enqueue)."""
        value: T = await self.enqueue(work, None, None, wakes_workers, urgent)
        return value

    def enqueue(
        self, work: Work[Any] | None, many: Many | None, item: Any, wakes_workers: bool,
        urgent: bool = True,
    ) -> asyncio.Future[Any]:
        """Queue a write for the next batch (see batch.Write); its future resolves after
        that batch committed. A plain function, so callers await the future directly."""
        loop = self._loop
        if loop is None or not self.running:
            raise StoreUnavailable("the SQLite store is not open")
        future = loop.create_future()
        self._pending.append(_Job(work, many, item, future, wakes_workers))
        if self._hand_over_soon:
            return future
        now = loop.time()
        if urgent:
            self._last_urgent = now
        if urgent or now - self._last_urgent > BUSY_WINDOW_SECONDS:
            self._hand_over_soon = True
            loop.call_soon(self._hand_over)
        elif self._hand_over_later is None:
            # Submissions keep coming: ride along with theirs rather than cost a transaction
            # (and an fsync) of its own; at most LINGER_SECONDS later if none comes.
            self._hand_over_later = loop.call_later(LINGER_SECONDS, self._hand_over)
        return future

    def _hand_over(self) -> None:
        """Give the thread every write collected since the last hand-over, in one put."""
        self._hand_over_soon = False
        if self._hand_over_later is not None:
            self._hand_over_later.cancel()
            self._hand_over_later = None
        jobs, self._pending = self._pending, []
        if jobs:
            self._queue.put(jobs)

    @contextlib.contextmanager
    def watching_others(self) -> Iterator[None]:
        """Held by a worker while it waits for work: meanwhile the thread looks every
        LOOK_SECONDS whether another process committed, and calls on_work if so."""
        self._foreign.waiting += 1
        if self._foreign.waiting == 1:
            self._queue.put(_LOOK)
        try:
            yield
        finally:
            self._foreign.waiting -= 1

    async def stop(self) -> None:
        """Finish every write queued so far, then close the connection. Idempotent."""
        if not self._accepting or self._stopped is None:
            return
        self._accepting = False
        self._hand_over()
        self._queue.put(_STOP)
        await self._stopped

    # --- on the writer thread --------------------------------------------------------------
    def _serve(self, ready: asyncio.Future[None]) -> None:
        try:
            connection = self._connect()
        except Exception as exc:
            self._call(_settle_one, ready, (None, _startup_error(exc)))
            self._call(_settle_one, self._stopped, (None, None))
            return
        self._foreign.start(connection)
        self._serving = True
        self._call(_settle_one, ready, (None, None))
        try:
            self._serve_batches(connection)
        finally:
            self._serving = False
            connection.close()
            self._call(_settle_one, self._stopped, (None, None))

    def _serve_batches(self, connection: sqlite3.Connection) -> None:
        stopping = False
        while not stopping:
            jobs, stopping = self._take_batch()
            if jobs:
                outcomes, committed = run_batch(connection, jobs)
                self._call(self._settle, jobs, outcomes, committed)
            if self._foreign.waiting and self._foreign.look(connection):
                self._call(self._on_work)

    def _take_batch(self) -> tuple[list[_Job], bool]:
        """Block for the first writes, then take whatever else is already waiting, at most
        MAX_BATCH (the rest is carried over to the next batch). While a worker waits for work,
        the block lasts at most LOOK_SECONDS (the batch may then be empty). True once stop()
        was seen and nothing is left."""
        jobs = self._carried
        while len(jobs) < MAX_BATCH and not self._stop_seen:
            try:
                item = self._queue.get(
                    block=not jobs, timeout=LOOK_SECONDS if self._foreign.waiting else None)
            except queue.Empty:
                break
            if item is _STOP:
                self._stop_seen = True
            elif item is not _LOOK:
                assert isinstance(item, list)
                jobs.extend(item)
        batch, self._carried = jobs[:MAX_BATCH], jobs[MAX_BATCH:]
        return batch, self._stop_seen and not self._carried

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        # RuntimeError: the loop is closed, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, *args)

    # --- back on the event loop ------------------------------------------------------------
    def _settle(self, jobs: list[_Job], outcomes: list[Outcome], committed: bool) -> None:
        if committed:
            self.committed_batches += 1
            pairs = zip(jobs, outcomes, strict=True)
            if any(job.wakes_workers and error is None for job, (_, error) in pairs):
                self._on_work()
        for job, (value, error) in zip(jobs, outcomes, strict=True):
            future = job.future
            if future.done():
                continue
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)


def _settle_one(future: asyncio.Future[Any] | None, outcome: Outcome) -> None:
    value, error = outcome
    if future is None or future.done():
        return
    if error is None:
        future.set_result(value)
    else:
        future.set_exception(error)


def _startup_error(exc: Exception) -> Exception:
    if isinstance(exc, sqlite3.Error):
        return unavailable(exc, "open")
    return exc
