"""A short-lived cache of the store's statistics. `/stats` and `/metrics` are open to anyone
and each reading counts every order by tier and status; with this cache a flood of readers
costs the store at most one reading per `ttl` (at most a second), and readers who arrive
while a reading is under way share it instead of starting their own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class StatsCache(Generic[T]):
    """`get()` answers from a reading at most `ttl` seconds old; `invalidate()` (after a
    write through this process) makes the next `get()` read again, so a client sees its own
    submissions at once. A `ttl` of 0 reads every time."""

    def __init__(
        self, read: Callable[[], Awaitable[T]], ttl: float,
        monotonic: Callable[[], float] = time.monotonic, pace: float = 0.0,
    ) -> None:
        self._read = read
        self._ttl = ttl
        self._pace = pace
        """With pace P, a reading that took D seconds serves for at least P * D seconds: the
        reads then cost at most 1/P of the time, however slow they get."""
        self._fresh_for = ttl
        self._monotonic = monotonic
        self._value: T | None = None
        self._read_at = float("-inf")
        self._generation = 0
        """Bumped by invalidate(): a reading started before a write may not be kept."""
        self._pending: tuple[int, asyncio.Future[T]] | None = None

    def invalidate(self) -> None:
        self._generation += 1
        self._value = None

    async def get(self) -> T:
        if self._ttl <= 0:
            return await self._read()
        if self._value is not None and self._monotonic() - self._read_at <= self._fresh_for:
            return self._value
        if self._pending is None or self._pending[0] != self._generation:
            task = asyncio.ensure_future(self._refresh(self._generation))
            task.add_done_callback(_retrieve)
            self._pending = (self._generation, task)
        return await asyncio.shield(self._pending[1])

    async def _refresh(self, generation: int) -> T:
        started = self._monotonic()
        try:
            value = await self._read()
        finally:
            if self._pending is not None and self._pending[0] == generation:
                self._pending = None
        if generation == self._generation:
            self._value, self._read_at = value, started
            self._fresh_for = max(self._ttl, self._pace * (self._monotonic() - started))
        return value


def _retrieve(task: asyncio.Future[T]) -> None:
    """A reading that failed after every waiter left must not warn about an unretrieved
    exception; the waiters, when there are any, get it themselves."""
    if not task.cancelled():
        task.exception()
