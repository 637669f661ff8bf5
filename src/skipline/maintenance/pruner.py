"""The Pruner deletes finished orders once their retention has passed, so the table (and with it
stats and listings) stays the size of recent work rather than of all work ever done."""

from __future__ import annotations

import asyncio
import logging

from skipline.config import Settings
from skipline.metrics import Metrics
from skipline.retrying import Periodic
from skipline.store.base import Store

log = logging.getLogger(__name__)

PRUNE_INTERVAL = 60.0
"""Seconds between two pruning passes."""
FIRST_PRUNE_DELAY = 1.0
"""The first pass waits this long (or one interval, if shorter) after start, so that a start's
own work (rescuing leases, the first claims) goes first."""
PRUNE_BATCH = 1000
"""Orders deleted per statement: SQLite's writer spends about 12 ms on them (measured), and
every write queued meanwhile waits that long."""
PRUNE_PAUSE = 0.1
"""Seconds between two statements of one pass, so claims, completions and submissions get the
store (SQLite's one writer; PostgreSQL's I/O) in between. It still allows 10,000 deletions a
second, far above the rate orders can finish, so a pass always catches up."""


class Pruner:
    """Retention: every `interval` seconds, deletes the orders that finished (succeeded,
    failed, cancelled) more than `settings.retention` seconds ago, measured on the store's
    clock; with a retention of 0 it never starts. Each pass deletes `batch` orders per
    statement, one statement after another while the last one was full, with `pause` seconds
    between them: every statement is bounded, and a backlog (the first start on a table that
    never had retention) is worked off over as many statements as it needs without holding the
    store for long at a time. How a store finds the orders cheaply is its own business
    (Store.prune_finished). Store errors are logged and retried, never fatal. Each process
    that runs workers runs one; several on one PostgreSQL database share the work."""

    def __init__(
        self, store: Store, settings: Settings, *, interval: float = PRUNE_INTERVAL,
        batch: int = PRUNE_BATCH, pause: float = PRUNE_PAUSE, metrics: Metrics | None = None,
    ) -> None:
        if interval <= 0 or batch < 1 or pause < 0:
            raise ValueError("the pruner needs interval > 0, batch >= 1 and pause >= 0")
        self.store = store
        self.retention = settings.retention
        self.interval = interval
        self.batch = batch
        self.pause = pause
        self.metrics = metrics
        self._loop = Periodic(
            self.prune_once, interval=interval, doing="pruning finished orders", logger=log,
            name="skipline-pruner",
        )

    @property
    def enabled(self) -> bool:
        """False when finished orders are kept forever (retention 0)."""
        return self.retention > 0

    @property
    def started(self) -> bool:
        return self._loop.running

    async def start(self) -> None:
        """Prune in the background from shortly after now. Idempotent; does nothing when
        retention is off."""
        if self.enabled:
            self._loop.start(first_delay=min(self.interval, FIRST_PRUNE_DELAY))

    async def stop(self) -> None:
        """Idempotent. A pass cut short leaves the rest for the next start."""
        await self._loop.stop()

    async def prune_once(self) -> int:
        """One pass: how many orders were deleted. What a pass deleted before a store error
        is still counted, in the log and the metric."""
        pruned = 0
        try:
            while True:
                deleted = await self.store.prune_finished(self.retention, self.batch)
                pruned += deleted
                if self.metrics is not None:
                    self.metrics.orders_pruned(deleted)
                if deleted < self.batch:
                    return pruned
                await asyncio.sleep(self.pause)
        finally:
            if pruned:
                log.info("pruned %d finished order(s) older than %gs (retention)",
                         pruned, self.retention)
