"""The memory store's worker registry (a dict, like the rest of it): one row per live pool,
each with the moment it expires, like a lease. A base class of MemoryStore, which gives it the
clock."""

from __future__ import annotations

from dataclasses import replace

from skipline.clock import Clock
from skipline.domain.workers import WorkerProcess, WorkerSignIn


class MemoryWorkerRegistry:
    """The worker registry methods of the Store protocol."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._workers: dict[str, tuple[WorkerProcess, float]] = {}
        """Worker id -> (the row, when it expires)."""

    async def register_worker(self, worker: WorkerSignIn, expiry_seconds: float) -> None:
        now = self._clock.now()
        row = WorkerProcess(
            worker.id, worker.host, worker.pid, tuple(worker.kinds), 0, worker.slots_total,
            started_at=now, last_heartbeat=now,
        )
        self._workers[worker.id] = (row, now + expiry_seconds)

    async def beat_worker(self, worker_id: str, slots_busy: int, expiry_seconds: float) -> bool:
        now = self._clock.now()
        found = self._workers.get(worker_id)
        if found is None or found[1] <= now:
            return False
        row = replace(found[0], slots_busy=slots_busy, last_heartbeat=now)
        self._workers[worker_id] = (row, now + expiry_seconds)
        return True

    async def remove_worker(self, worker_id: str) -> bool:
        return self._workers.pop(worker_id, None) is not None

    async def list_workers(self) -> list[WorkerProcess]:
        now = self._clock.now()
        rows = [row for row, expires_at in self._workers.values() if expires_at > now]
        return sorted(rows, key=lambda row: (row.started_at, row.id))

    async def prune_workers(self) -> int:
        now = self._clock.now()
        expired = [worker_id for worker_id, (_, until) in self._workers.items() if until <= now]
        for worker_id in expired:
            del self._workers[worker_id]
        return len(expired)
