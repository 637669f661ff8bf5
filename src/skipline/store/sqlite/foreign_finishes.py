"""Finishes committed by another process to the same SQLite file, for the requests waiting in
this one (`GET /orders/{id}?wait=S`). The writer thread sees that another process committed
(foreign_commits.py) and calls `commit_seen`; the waited ids are then read back together, at
most CHUNK to a statement, and only the waiters of orders now final are woken (a wake-up only
means "look again", finishes.py). Not one read per waiter: 10,000 waiters cost 20 statements.

While another process keeps committing (a busy `skipline worker`), commits seen during a read
start one more read after it, never one per commit, and reads are spaced so that they take
at most about 1 / (1 + PAUSE_FACTOR) of the event loop: a few waiters are answered within a
look or two, many waiters a little later rather than at the expense of the rest of the process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from skipline.domain.errors import StoreUnavailable
from skipline.store.finishes import FinishWatch

CHUNK = 500
"""Ids per statement: a 500-element JSON array and 500 primary-key lookups, about 1 ms."""
PAUSE_FACTOR = 4.0
"""After a read that took d seconds, the next one waits d * PAUSE_FACTOR."""

FinalAmong = Callable[[list[str]], Awaitable[list[str]]]

log = logging.getLogger(__name__)


class ForeignFinishes:
    """One store's reading back of waited orders after another process committed. One asyncio
    loop only."""

    def __init__(self, watch: FinishWatch, final_among: FinalAmong) -> None:
        self._watch = watch
        self._final_among = final_among
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self.reads = 0
        """Read-backs made so far (each of CHUNK ids at most), for tests and benchmarks."""

    def commit_seen(self) -> None:
        """Another process committed: read the waited orders back (one read at a time)."""
        if self._task is not None:
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._read_back())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _read_back(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._again = False
                started = loop.time()
                await self._wake_finished()
                if not self._again:
                    return
                await asyncio.sleep((loop.time() - started) * PAUSE_FACTOR)
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def _wake_finished(self) -> None:
        ids = self._watch.waited_ids()
        try:
            for start in range(0, len(ids), CHUNK):
                if start:
                    await asyncio.sleep(0)  # the loop serves others between two statements
                self.reads += 1
                self._watch.finished(await self._final_among(ids[start:start + CHUNK]))
        except StoreUnavailable:  # every waiter reads again, and meets the error itself
            log.warning("reading back waited orders failed", exc_info=True)
            self._watch.wake_all()
