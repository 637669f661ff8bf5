"""A pool's row in the worker registry: signed in when the pool starts, beaten on the heartbeat
cadence (a third of a lease) with the slots busy, removed on a graceful stop. The row expires
like a lease (invariant 4 (docs/architecture.md)), so a pool killed without a stop disappears
from the registry one lease after its last beat, and the lease reaper deletes the row."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable

from skipline.config import Settings
from skipline.domain.workers import WorkerSignIn
from skipline.retrying import Periodic, attempt_logged
from skipline.store.base import Store

log = logging.getLogger(__name__)

SIGN_OUT_SECONDS = 1.0
"""How long a stop tries to remove the row: a courtesy, since the row expires anyway, that must
not hold up a drain (or a fast exit) while the store does not answer."""


class Presence:
    """Keeps one pool's registry row alive. Store errors are logged and retried on the next
    beat, never fatal: the registry is for people looking, the queue works without it."""

    def __init__(
        self, store: Store, settings: Settings, worker_id: str, kinds: tuple[str, ...],
        busy: Callable[[], int],
    ) -> None:
        self.store = store
        self.expiry = settings.lease_seconds
        self.identity = WorkerSignIn(
            worker_id, socket.gethostname(), os.getpid(), kinds, settings.workers)
        self._busy = busy
        self._signed_in = False
        self._loop = Periodic(
            self.beat_once, interval=settings.lease_seconds / 3, logger=log,
            doing=f"worker {worker_id}: beating in the worker registry",
            name=f"skipline-presence-{worker_id}", retry_sooner=True,
        )

    def start(self) -> None:
        """Sign in at once, then beat, in the background: started just before the pool's
        claim loop, the sign-in is written in the same loop iteration as the first claim,
        so on SQLite both share one transaction. Idempotent."""
        self._loop.start(first_delay=0.0)

    async def stop(self) -> None:
        """Stop beating and remove the row (a graceful stop). Idempotent."""
        was_running = self._loop.running
        await self._loop.stop()
        if was_running and self._signed_in:
            self._signed_in = False
            await attempt_logged(self._remove, "leaving the worker registry", log)

    async def beat_once(self) -> None:
        """Beat; sign in (again) when the registry no longer holds this pool alive: at start,
        or after the row expired while the store could not be reached."""
        if self._signed_in and await self.store.beat_worker(
            self.identity.id, self._busy(), self.expiry
        ):
            return
        if self._signed_in:
            log.warning("worker %s: its registry row had expired; signing in again",
                        self.identity.id)
        await self.store.register_worker(self.identity, self.expiry)
        self._signed_in = True

    async def _remove(self) -> None:
        async with asyncio.timeout(SIGN_OUT_SECONDS):
            await self.store.remove_worker(self.identity.id)
