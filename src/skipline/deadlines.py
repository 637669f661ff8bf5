"""Order timeouts for a whole worker pool: one timer per short tick rather than one per order.

`asyncio.timeout` around each handler costs about 3.5 µs per order (a Timeout object, a timer
handle pushed on the loop's heap and cancelled again), a tenth of a no-op order's whole cost.
Here an order joins the set of the tick its deadline falls in, and leaves it when its handler
returns; each tick has one timer, which hands whatever is still in its set to `expire`. A
handler is therefore stopped at most one tick (a twentieth of the timeout, at most 0.1 s) after
its deadline.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Item = TypeVar("Item", bound=Hashable)

LONGEST_TICK = 0.1
"""Seconds; shorter for short timeouts (a twentieth of the timeout)."""


class Deadlines(Generic[Item]):
    """Items that must finish within `seconds` of being added; `expire(item)` is called for
    each one still there once its deadline (rounded up to the next tick) has passed."""

    def __init__(self, seconds: float, expire: Callable[[Item], None]) -> None:
        """Create it inside the running loop, which it keeps (asking asyncio for the running
        loop on every add costs a getpid system call)."""
        if seconds <= 0:
            raise ValueError("a deadline must be > 0 seconds away")
        self._loop = asyncio.get_running_loop()
        self.seconds = seconds
        self.tick = min(LONGEST_TICK, seconds / 20)
        self._expire = expire
        self._waiting: dict[int, set[Item]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return sum(len(items) for items in self._waiting.values())

    def add(self, item: Item) -> int:
        """Start the clock for `item`; returns its tick, for `discard`."""
        loop = self._loop
        tick = math.ceil((loop.time() + self.seconds) / self.tick)
        items = self._waiting.get(tick)
        if items is None:
            items = self._waiting[tick] = set()
            self._timers[tick] = loop.call_at(tick * self.tick, self._fire, tick)
        items.add(item)
        return tick

    def discard(self, item: Item, tick: int) -> None:
        """`item` finished in time (or gave up); a no-op once it has expired."""
        items = self._waiting.get(tick)
        if items is not None:
            items.discard(item)

    def close(self) -> None:
        """Forget every item and cancel every timer. Idempotent."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._waiting.clear()

    def _fire(self, tick: int) -> None:
        self._timers.pop(tick, None)
        for item in self._waiting.pop(tick, ()):
            self._expire(item)
