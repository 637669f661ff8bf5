"""Group commit for concurrent calls: callers that arrive while a batch is being written wait
together and go out in the next batch, as one statement and one commit.

Nothing waits on a timer: a lone call is written at once, and batches grow only with load.
A batch whose commit is in doubt (WriteInDoubt) is settled aside, so the batches behind it are
not held up while it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from skipline.domain.errors import StoreUnavailable

Item = TypeVar("Item")
Result = TypeVar("Result")

Flush = Callable[[Sequence[Item]], Awaitable[Sequence[Result | Exception]]]
"""Writes a batch; returns one outcome per item, in order: its result, or an exception for
that item's caller alone."""
Settle = Callable[[], Awaitable[Sequence[Any]]]

MAX_BATCH = 500
"""Largest batch written at once; more waiting calls go in the following batches."""


class WriteInDoubt(Exception):
    """Raised by a flush that cannot tell whether its batch was committed (the connection died
    after the statement was sent). `settle` finds out, however long that takes, and returns
    what the flush would have returned."""

    def __init__(self, settle: Settle) -> None:
        super().__init__("the outcome of a write is in doubt")
        self.settle = settle


class Batcher(Generic[Item, Result]):
    """Collects items from concurrent callers and writes them with `flush`, one batch at a
    time."""

    def __init__(self, flush: Flush[Item, Result], max_batch: int = MAX_BATCH) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._settling: set[asyncio.Task[None]] = set()

    async def run(self, item: Item) -> Result:
        """Write `item` in the next batch and return its result (or raise the batch's error)."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all(), name="skipline-pg-batch")
        return await future

    async def drain(self) -> None:
        """Wait until every call made so far has been written, or settled (used when closing)."""
        while pending := [task for task in (self._writer, *self._settling)
                          if task is not None and not task.done()]:
            await asyncio.wait(pending)

    async def _write_all(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            await self._write(batch)

    async def _write(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            outcomes = await self._flush([item for item, _ in batch])
        except asyncio.CancelledError:
            fail_all(batch, StoreUnavailable("the store closed while this write was pending"))
            raise
        except WriteInDoubt as doubt:
            self._settle_aside(batch, doubt.settle)
            return
        except Exception as error:
            fail_all(batch, error)
            if isinstance(error, StoreUnavailable):
                # The callers who arrived meanwhile would fail the same way, only later:
                # tell them now, so no caller waits longer than one write.
                waiting, self._waiting = self._waiting, []
                fail_all(waiting, error)
            return
        hand_out(batch, outcomes)

    def _settle_aside(self, batch: list[tuple[Item, asyncio.Future[Result]]],
                      settle: Settle) -> None:
        task = asyncio.create_task(settle_batch(batch, settle), name="skipline-pg-settle")
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)


async def settle_batch(batch: Sequence[tuple[object, asyncio.Future[Any]]], settle: Settle) -> None:
    """Hand each caller of an in-doubt batch what `settle` found out."""
    try:
        outcomes = await settle()
    except asyncio.CancelledError:
        fail_all(batch, StoreUnavailable("the store closed while this write was in doubt"))
        raise
    except Exception as error:
        fail_all(batch, error)
        return
    hand_out(batch, outcomes)


def hand_out(batch: Sequence[tuple[object, asyncio.Future[Any]]], outcomes: Sequence[Any]) -> None:
    """Give each caller still waiting its own outcome: a result, or an exception to raise."""
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        if future.done():
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def fail_all(batch: Sequence[tuple[object, asyncio.Future[Any]]], error: Exception) -> None:
    """Hand `error` to every caller of `batch` still waiting."""
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
