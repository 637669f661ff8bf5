"""Background start/stop services that keep the queue healthy. The LeaseReaper returns orders
whose lease expired (their worker crashed, hung or lost the network) to the queue (invariant 4)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from skipline.config import Settings
from skipline.retrying import log_store_error, store_pause
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
        self._task: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self._task is not None

    async def start(self) -> None:
        """Rescue what expired while nobody was looking, then keep doing it in the background."""
        if self._task is not None:
            return
        failures = 0 if await self._reap_logged() else 1
        self._task = asyncio.create_task(self._run(failures), name="skipline-lease-reaper")

    async def stop(self) -> None:
        """Idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def reap_once(self) -> int:
        """One pass: how many expired leases were rescued (or failed as poison)."""
        touched = await self.store.rescue_expired(self.max_rescues)
        if touched:
            log.info("rescued %d order(s) whose lease had expired", touched)
        return touched

    async def _run(self, failures: int) -> None:
        while True:
            delay = self.interval if failures == 0 else max(self.interval, store_pause(failures))
            await asyncio.sleep(delay)
            failures = 0 if await self._reap_logged() else failures + 1

    async def _reap_logged(self) -> bool:
        try:
            await self.reap_once()
        except Exception as exc:
            log_store_error(log, "rescuing expired leases", exc)
            return False
        return True
