"""Wake-ups across processes on one SQLite file. SQLite has no LISTEN/NOTIFY, so while a worker
of this process waits for work, the writer thread looks every LOOK_SECONDS whether another
process committed to the file, and wakes the worker if so.

The look is `PRAGMA data_version` on the writer's own connection: read from the WAL index in
shared memory, about 3 µs (measured), and it moves only for commits made through OTHER
connections, so this process's own writes (already signalled at once, see writer.py) never
cause a spurious wake-up. The looks run only while a worker waits: a process whose workers are
all busy, or that has none, pays nothing; an idle worker costs about a hundred looks a second
instead of a busy loop (bench/sqlite_wakeup.py measures both its latency and its CPU).
"""

from __future__ import annotations

import sqlite3

from skipline.store.sqlite.schema import data_version

LOOK_SECONDS = 0.01
"""Between two looks while a worker waits: the target is a start within 50 ms at p95, and the
claim that follows a wake-up costs a transaction (an fsync) of its own."""


class ForeignCommits:
    """How many workers wait (counted on the event loop, read by the writer thread), and the
    file's data_version as the writer thread last saw it."""

    def __init__(self) -> None:
        self.waiting = 0
        self._seen: int | None = None

    def start(self, connection: sqlite3.Connection) -> None:
        """On the writer thread, once its connection is open."""
        self._seen = data_version(connection)

    def look(self, connection: sqlite3.Connection) -> bool:
        """On the writer thread: True if another connection committed since the last look
        (or the file could not be read: the worker's claim then meets and reports the error)."""
        version = data_version(connection)
        changed = version is None or version != self._seen
        self._seen = version
        return changed
