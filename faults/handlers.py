"""Handlers the scenarios run inside real `skipline serve` processes (`--handler
faults.handlers:NAME`). Every run is journalled (faults.journal), so the checker sees each real
execution, including those a crash interrupted.

- `record`: sleeps the order's `duration`, then returns; the slow-handler scenario gives it
  durations of three leases;
- `always_raises`: every run raises (a poison order for the retry path);
- `kills_itself`: the run SIGKILLs its own process (a poison order for the rescue path);
- `slower_each_attempt`: `record`, sleeping `duration` times the attempt number: an order taken
  over after a partition runs longer under its new worker than under the one cut off, so the
  old worker's completion arrives while the new run still holds the lease (what a fence must
  refuse, and the planted fencing bug accepts);
- `poison`: `record`, unless the payload says `"poison": "raise"` or `"poison": "kill"`, so poison
  and healthy orders share one server.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from faults import journal
from skipline.domain.models import JSON, Order


@asynccontextmanager
async def journalled(order: Order) -> AsyncIterator[None]:
    """Journal the start of a run, and its end however it ends (return, raise, cancel)."""
    journal.append("start", order.id)
    try:
        yield
    finally:
        journal.append("end", order.id)


async def record(order: Order) -> JSON:
    async with journalled(order):
        await asyncio.sleep(order.duration)
    return {"pid": os.getpid(), "attempt": order.attempts}


async def slower_each_attempt(order: Order) -> JSON:
    async with journalled(order):
        await asyncio.sleep(order.duration * max(1, order.attempts))
    return {"pid": os.getpid(), "attempt": order.attempts}


async def always_raises(order: Order) -> JSON:
    async with journalled(order):
        raise RuntimeError(f"poison order: attempt {order.attempts} raised on purpose")


async def kills_itself(order: Order) -> JSON:
    journal.append("start", order.id)
    os.kill(os.getpid(), signal.SIGKILL)
    await asyncio.sleep(60)  # never reached: SIGKILL cannot be caught
    return None


async def poison(order: Order) -> JSON:
    kind = order.payload.get("poison") if isinstance(order.payload, dict) else None
    if kind == "raise":
        return await always_raises(order)
    if kind == "kill":
        return await kills_itself(order)
    return await record(order)
