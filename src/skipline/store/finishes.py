"""Waiting for an order to become final (`GET /orders/{id}?wait=S`) without polling.

A waiter parks one future under its order's id; whatever finishes orders (a completion, a
failure for good, a cancel, a poisoned rescue; on PostgreSQL a notification from any process)
resolves the futures of those ids. A finish with nobody waiting costs one test of an empty
dict. A wake-up only says "look again": the waiter re-reads the order, so a spurious or
blanket wake-up (after a lost listening connection) is harmless. On SQLite, finishes committed
by another process are found by a batched read of the waited ids (sqlite/foreign_finishes.py),
started through `on_first_waiter` and `waited_ids`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from skipline.domain.models import Order

Read = Callable[[], Awaitable[Order | None]]
Waiting = Coroutine[Any, Any, Order | None]
"""What `FinishWatch.wait` returns: a store's `wait_final` hands it on rather than awaiting it
in a coroutine of its own, one frame fewer per waiter (bench/wait_many.py)."""

ID_SEPARATOR = ","
"""Between the order ids of one notification's payload (ids never contain a comma)."""


class FinishWatch:
    """The waiters of one store, by order id. One asyncio loop only."""

    def __init__(self, on_first_waiter: Callable[[], None] | None = None) -> None:
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._on_first_waiter = on_first_waiter
        """Called when a waiter parks while none was parked (wait, on the loop)."""

    def any_waiting(self) -> bool:
        """Whether a waiter is parked; one len() of a dict, so another thread may ask."""
        return bool(self._waiters)

    def waited_ids(self) -> list[str]:
        """The ids waiters are parked under, at this moment."""
        return list(self._waiters)

    @property
    def waiting(self) -> int:
        """How many waiters are parked (for tests and benchmarks)."""
        return sum(len(futures) for futures in self._waiters.values())

    def finished(self, order_ids: Iterable[str]) -> None:
        """Wake the waiters of `order_ids`; cheap when nobody waits."""
        if not self._waiters:
            return
        for order_id in order_ids:
            for future in self._waiters.pop(order_id, ()):
                if not future.done():
                    future.set_result(None)

    def finished_text(self, payload: str) -> None:
        """`finished` for a notification payload: ids separated by ID_SEPARATOR."""
        if self._waiters and payload:
            self.finished(payload.split(ID_SEPARATOR))

    def wake_all(self) -> None:
        """Every waiter looks again (finishes may have been missed)."""
        self.finished(list(self._waiters))

    async def wait(self, order_id: str, read: Read, max_seconds: float) -> Order | None:
        """The order as soon as `read` shows it final, or as it is after `max_seconds`; None
        once it does not exist. The future is parked before each read, so a finish between
        the read and the wait is never missed. No order is held while waiting: ten thousand
        waiters would keep ten thousand payloads alive."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_seconds
        while True:
            future: asyncio.Future[None] = loop.create_future()
            first = not self._waiters
            self._waiters.setdefault(order_id, []).append(future)
            if first and self._on_first_waiter is not None:
                self._on_first_waiter()  # after parking: whoever it wakes must see a waiter
            try:
                order = await read()
                if order is None or order.status.is_final or loop.time() >= deadline:
                    return order
                del order
                timer = loop.call_at(deadline, _wake, future)  # lighter than asyncio.timeout_at
                try:
                    await future
                finally:
                    timer.cancel()
                if loop.time() >= deadline:
                    return await read()
            finally:
                self._forget(order_id, future)

    def _forget(self, order_id: str, future: asyncio.Future[None]) -> None:
        futures = self._waiters.get(order_id)
        if futures is None:
            return
        with contextlib.suppress(ValueError):
            futures.remove(future)
        if not futures:
            del self._waiters[order_id]


def _wake(future: asyncio.Future[None]) -> None:
    """A waiter's deadline: it looks once more, as a finish would make it."""
    if not future.done():
        future.set_result(None)
