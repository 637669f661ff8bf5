"""Background start/stop services that keep the queue healthy: the LeaseReaper (expired
leases back to the queue) and the Pruner (retention). Every process that runs workers runs both
beside its pool (`Maintenance`); the process runtime starts and stops them, not the pool."""

from __future__ import annotations

from skipline.config import Settings
from skipline.maintenance.pruner import Pruner
from skipline.maintenance.reaper import LeaseReaper
from skipline.metrics import Metrics
from skipline.store.base import Store

__all__ = ["LeaseReaper", "Maintenance", "Pruner"]


class Maintenance:
    """The reaper and the pruner of one process, started and stopped together. `metrics`,
    when given, counts what the pruner deletes."""

    def __init__(self, store: Store, settings: Settings, metrics: Metrics | None = None) -> None:
        self.reaper = LeaseReaper(store, settings)
        self.pruner = Pruner(store, settings, metrics=metrics)

    async def start(self) -> None:
        """The reaper's first pass runs before this returns (what expired while no worker
        was looking is queued again before the first claim). Idempotent."""
        await self.reaper.start()
        await self.pruner.start()

    async def stop(self) -> None:
        """Idempotent."""
        await self.reaper.stop()
        await self.pruner.stop()
