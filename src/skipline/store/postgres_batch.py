"""Group commit for concurrent calls: callers that arrive while a batch is being written wait
together and go out in the next batch, as one statement and one commit.

Nothing waits on a timer: a lone call is written at once, and batches grow only with load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from skipline.domain.errors import StoreUnavailable

Item = TypeVar("Item")
Result = TypeVar("Result")

Flush = Callable[[Sequence[Item]], Awaitable[Sequence[Result]]]

MAX_BATCH = 500
"""Largest batch written at once; more waiting calls go in the following batches."""


class Batcher(Generic[Item, Result]):
    """Collects items from concurrent callers and writes them with `flush`, one batch at a
    time; `flush` returns one result per item, in order."""

    def __init__(self, flush: Flush[Item, Result], max_batch: int = MAX_BATCH) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def run(self, item: Item) -> Result:
        """Write `item` in the next batch and return its result (or raise the batch's error)."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all(), name="skipline-pg-batch")
        return await future

    async def drain(self) -> None:
        """Wait until every call made so far has been written (used when closing)."""
        writer = self._writer
        if writer is not None and not writer.done():
            await asyncio.wait([writer])

    async def _write_all(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            await self._write(batch)

    async def _write(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._flush([item for item, _ in batch])
        except asyncio.CancelledError:
            fail_all(batch, StoreUnavailable("the store closed while this write was pending"))
            raise
        except Exception as error:
            fail_all(batch, error)
            if isinstance(error, StoreUnavailable):
                # The callers who arrived meanwhile would fail the same way, only later:
                # tell them now, so no caller waits longer than one write.
                waiting, self._waiting = self._waiting, []
                fail_all(waiting, error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def fail_all(batch: Sequence[tuple[object, asyncio.Future[Any]]], error: Exception) -> None:
    """Hand `error` to every caller of `batch` still waiting."""
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
