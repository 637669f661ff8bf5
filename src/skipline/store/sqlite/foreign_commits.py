"""Wake-ups across processes on one SQLite file. SQLite has no LISTEN/NOTIFY, so while a worker
of this process waits for work, or a request waits for an order to finish (`?wait=S`), the
writer thread looks every LOOK_SECONDS whether another process committed to the file; if so it
wakes the worker, and has the waited orders read back (foreign_finishes.py).

The look is `PRAGMA data_version` on the writer's own connection: read from the WAL index in
shared memory, about 3 µs (measured), and it moves only for commits made through OTHER
connections, so this process's own writes (already signalled at once, see writer.py and
finishes.py) never cause a spurious wake-up. The looks run only while someone waits: a process
whose workers are all busy and where no request waits pays nothing; waiting costs about a
hundred looks a second instead of a busy loop (bench/sqlite_wakeup.py measures an idle
worker's latency and CPU, bench/wait_many.py the CPU of parked requests).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from skipline.store.sqlite.schema import data_version

LOOK_SECONDS = 0.01
"""Between two looks while a worker or a request waits: the target is a start within 50 ms at
p95, and the claim that follows a wake-up costs a transaction (an fsync) of its own."""


def _nobody() -> bool:
    return False


class ForeignCommits:
    """How many workers wait (counted on the event loop, read by the writer thread), whether a
    request waits for a finish, and the file's data_version as each of them last saw it."""

    def __init__(self, finishes_waited: Callable[[], bool] = _nobody) -> None:
        self.waiting = 0
        self.finishes_waited = finishes_waited
        """Whether a request waits for an order to finish (asked on the writer thread)."""
        self._seen_by_workers: int | None = None
        self._seen_by_finishes: int | None = None

    @property
    def wanted(self) -> bool:
        """Whether the writer thread should look at all."""
        return self.waiting > 0 or self.finishes_waited()

    def start(self, connection: sqlite3.Connection) -> None:
        """On the writer thread, once its connection is open."""
        self._seen_by_workers = self._seen_by_finishes = data_version(connection)

    def look(self, connection: sqlite3.Connection) -> tuple[bool, bool]:
        """On the writer thread: whether another connection committed since the waiting
        workers' last look, and since the waiting requests' (both True if the file could not
        be read: whoever then reads meets and reports the error). Each side's version moves
        only while it waits, so a commit made meanwhile is seen by its next wait's first look
        (the claim that ended a worker's last wait may have come just before that commit)."""
        version = data_version(connection)
        workers = finishes = False
        if self.waiting:
            workers = version is None or version != self._seen_by_workers
            self._seen_by_workers = version
        if self.finishes_waited():
            finishes = version is None or version != self._seen_by_finishes
            self._seen_by_finishes = version
        return workers, finishes
