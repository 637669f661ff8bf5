"""Wake-ups over LISTEN/NOTIFY: one dedicated connection per store listens on the channel that
every statement making orders queued notifies (submit, release, retry, rescue), so an idle
worker starts new work at once instead of polling.

When the listening connection is lost the listener reconnects in the background; until it is
back, waiters fall back to short polls, and a reconnect wakes them (notifications sent while we
were away are gone, so the waiters must look for themselves).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from skipline.store.postgres.errors import is_outage
from skipline.store.wakeup import WakeUp, wait_on

WAKE_CHANNEL = "skipline_ready"
"""Must match the channel of the `wake` CTEs in sql/queries.sql."""

FALLBACK_POLL_SECONDS = 0.25
"""How long a waiter sleeps between looks while the listening connection is down."""

RECONNECT_DELAYS = (0.1, 0.2, 0.5, 1.0)
"""Pauses between reconnection attempts; the last one repeats."""

CHECK_EVERY_SECONDS = 5.0
"""How often an idle listening connection is probed, to notice a silent network loss."""

CHECK_TIMEOUT_SECONDS = 2.0

Connect = Callable[[], Awaitable[Any]]

log = logging.getLogger(__name__)


class WakeListener:
    """Keeps one LISTEN connection alive and turns its notifications into a wake-up event."""

    def __init__(self, connect: Connect, probe_sql: str) -> None:
        self._connect = connect
        self._probe_sql = probe_sql
        self._wake: WakeUp | None = None
        self._lost: asyncio.Event | None = None
        self._first_attempt: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._connection: Any = None
        self._missed_notifications = False

    @property
    def listening(self) -> bool:
        """True while notifications can reach us."""
        connection = self._connection
        return connection is not None and not connection.is_closed()

    async def start(self, first_connect_seconds: float) -> None:
        """Begin listening; waits for the first connection attempt (at most
        `first_connect_seconds`), and if that fails keeps trying in the background."""
        if self._task is not None:
            return
        self._wake = WakeUp()
        self._lost = asyncio.Event()
        self._first_attempt = asyncio.Event()
        self._task = asyncio.create_task(self._keep_listening(), name="skipline-pg-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), first_connect_seconds)

    async def stop(self) -> None:
        """Stop listening and close the connection. Idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close_connection()

    async def wait(self, max_seconds: float) -> None:
        """Return on a notification, or after `max_seconds` (a short poll while not listening)."""
        timeout = max_seconds if self.listening else min(max_seconds, FALLBACK_POLL_SECONDS)
        await wait_on(self._wake, timeout)

    def _notified(self, *_: object) -> None:
        if self._wake is not None:
            self._wake.notify()

    def _attempted(self) -> None:
        if self._first_attempt is not None:
            self._first_attempt.set()

    def _connection_lost(self, *_: object) -> None:
        if self._lost is not None:
            self._lost.set()

    async def _keep_listening(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen_once()
                failures = 0
            except Exception as error:
                if not is_outage(error):
                    log.exception("the wake-up listener failed")
                failures += 1
            self._attempted()
            self._missed_notifications = True
            await self._close_connection()
            delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
            await asyncio.sleep(delay)

    async def _listen_once(self) -> None:
        """Connect and LISTEN; after a reconnection wake the waiters (notifications sent
        meanwhile are lost); then watch the connection until it is lost."""
        assert self._lost is not None
        self._lost.clear()
        connection = await self._connect()
        self._connection = connection
        connection.add_termination_listener(self._connection_lost)
        await connection.add_listener(WAKE_CHANNEL, self._notified)
        self._attempted()
        if self._missed_notifications:
            self._notified()
        while not connection.is_closed():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), CHECK_EVERY_SECONDS)
            if self._lost.is_set():
                return
            await connection.execute(self._probe_sql, timeout=CHECK_TIMEOUT_SECONDS)

    async def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None or connection.is_closed():
            return
        connection.remove_termination_listener(self._connection_lost)
        try:
            await asyncio.wait_for(connection.close(), CHECK_TIMEOUT_SECONDS)
        except Exception:
            connection.terminate()
