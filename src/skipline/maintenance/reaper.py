"""The LeaseReaper returns orders whose lease expired (their worker crashed, hung or lost the
network) to the queue (invariant 4 (docs/architecture.md)), and deletes the worker registry rows
that expired the same way (a pool that stopped beating without signing out)."""

from __future__ import annotations

import logging

from skipline.config import Settings
from skipline.retrying import Periodic, attempt_logged
from skipline.store.base import Store

log = logging.getLogger(__name__)

LONGEST_INTERVAL = 5.0


class LeaseReaper:
    """Calls `store.rescue_expired` once at start and then every `interval` seconds
    (default: half a lease, at most 5 s). Store errors are logged and retried, never fatal."""

    def __init__(self, store: Store, settings: Settings, interval: float | None = None) -> None:
        self.store = store
        self.max_rescues = settings.max_rescues
        default = min(LONGEST_INTERVAL, settings.lease_seconds / 2)
        self.interval = default if interval is None else interval
        if self.interval <= 0:
            raise ValueError("the reaper's interval must be > 0")
        self._loop = Periodic(
            self.reap_once, interval=self.interval, doing="rescuing expired leases", logger=log,
            name="skipline-lease-reaper",
        )

    @property
    def started(self) -> bool:
        return self._loop.running

    async def start(self) -> None:
        """Rescue what expired while nobody was looking, then keep doing it in the background."""
        if self._loop.running:
            return
        ok = await attempt_logged(self.reap_once, "rescuing expired leases", log)
        self._loop.start(failures=0 if ok else 1)

    async def stop(self) -> None:
        """Idempotent."""
        await self._loop.stop()

    async def reap_once(self) -> int:
        """One pass: how many expired leases were rescued (or failed as poison)."""
        touched = await self.store.rescue_expired(self.max_rescues)
        if touched:
            log.info("rescued %d order(s) whose lease had expired", touched)
        gone = await self.store.prune_workers()
        if gone:
            log.info("removed %d worker(s) from the registry: their heartbeat had expired", gone)
        return touched
