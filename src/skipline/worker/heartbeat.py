"""Heartbeats: one store call renews the lease of every order a pool holds, every third of a
lease (invariant 4 (docs/architecture.md)); an order whose lease another worker may own now
is handed back to the pool to stop working on."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from skipline.config import Settings
from skipline.retrying import Periodic
from skipline.store.base import Store
from skipline.worker.runs import Run

log = logging.getLogger(__name__)


class Heartbeat:
    """Renews the leases of `runs()` in the background; calls `lost(run)` for each one the
    store no longer lets us hold. A failed renewal is retried sooner than the interval."""

    def __init__(
        self, store: Store, settings: Settings, worker_id: str,
        runs: Callable[[], Collection[Run]], lost: Callable[[Run], None],
    ) -> None:
        self.store = store
        self.lease_seconds = settings.lease_seconds
        self._runs = runs
        self._lost = lost
        self._loop = Periodic(
            self.beat_once, interval=settings.lease_seconds / 3, logger=log,
            doing=f"worker {worker_id}: renewing leases", name=f"skipline-heartbeat-{worker_id}",
            retry_sooner=True,
        )

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def beat_once(self) -> None:
        runs = list(self._runs())
        if not runs:
            return
        held = await self.store.heartbeat([run.key for run in runs], self.lease_seconds)
        for run in runs:
            if run.order.id not in held:
                self._lost(run)
