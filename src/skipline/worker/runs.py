"""The types every part of the worker shares: one order in one slot (`Run`), the loop-bound
events of a pool (`Signals`), and what a handler produced (`Outcome`). The bottom of the
package: it imports none of the other worker modules, so they can all use it without a cycle."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from skipline.domain.models import JSON, Lease, Order


@dataclass(slots=True)
class Outcome:
    """What one run of the handler produced: a result, or the error text to record. (Not
    frozen: one is made per order, and a frozen dataclass costs twice as much to build.)"""

    result: JSON = None
    error: str | None = None


@dataclass(eq=False)
class Run:
    """One order occupying one slot."""

    lease: Lease
    started: float
    task: asyncio.Task[None] | None = None
    handler_done: bool = False
    lease_lost: bool = False
    timed_out: bool = False

    @property
    def order(self) -> Order:
        return self.lease.order

    @property
    def key(self) -> tuple[str, str]:
        return (self.lease.order.id, self.lease.token)


@dataclass(eq=False)
class Signals:
    """The loop-bound parts of a pool, created in start()."""

    stopping: asyncio.Event
    slot_freed: asyncio.Event
    hurry: asyncio.Event
    """Set by WorkerPool.hurry(): a drain stops waiting for running orders."""
