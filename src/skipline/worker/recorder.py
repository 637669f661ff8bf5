"""Recording what became of an order, under its lease token: success, failure (with the
backoff before its next attempt), or its lease given back. Each store call is retried while the
store is down, for as long as that is still worth it."""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Iterable

from skipline.clock import Clock
from skipline.config import Settings
from skipline.domain.models import JSON, Lease, Order, Status
from skipline.domain.scheduling import retry_delay
from skipline.logs import order_fields
from skipline.registry import Handlers
from skipline.retrying import EXPECTED_STORE_ERRORS, describe_error, retry_store_call
from skipline.store.base import Store
from skipline.worker.runs import Run

log = logging.getLogger(__name__)

RECORD_RETRY_SECONDS = 60.0
"""How long a completion is retried while the store is down; after that the lease expires
and the order runs again (at least once)."""
RELEASE_SECONDS = 2.0
"""How long a drain keeps trying to give leases back."""
RETRY_WAKE_SLACK = 0.01
"""Added to our own retry times so a wake-up does not come a hair before the order is ready."""


class Recorder:
    """Completes, fails and releases orders for one pool, and remembers when the orders it
    failed are due for their next attempt (the store sends no wake-up when a backoff ends)."""

    def __init__(
        self, store: Store, settings: Settings, clock: Clock, handlers: Handlers | None = None,
    ) -> None:
        self.handlers = handlers or Handlers()
        self.store = store
        self.settings = settings
        self.clock = clock
        self._retry_times: list[float] = []
        """Loop times at which an order we failed becomes ready again (a heap)."""

    def next_retry(self, now: float) -> float | None:
        """The earliest retry time after `now` (loop time) of an order this pool failed."""
        times = self._retry_times
        while times and times[0] <= now:
            heapq.heappop(times)
        return times[0] if times else None

    async def complete(self, run: Run, result: JSON) -> None:
        """Record success under our token. A store that refuses the result itself (not an
        outage) gets the run recorded as a failure instead."""
        order_id, token = run.key
        try:
            try:  # the first attempt directly: no retry machinery unless the store is down
                done = await self.store.complete(order_id, token, result)
            except EXPECTED_STORE_ERRORS as exc:
                done = await retry_store_call(
                    lambda: self.store.complete(order_id, token, result),
                    doing=f"completing order {order_id}", logger=log,
                    seconds=RECORD_RETRY_SECONDS, first_error=exc,
                )
        except EXPECTED_STORE_ERRORS:
            raise
        except Exception as exc:
            log.error("order %s: the store refused its result", order_id, exc_info=exc)
            await self.fail(run, f"the result could not be stored: {describe_error(exc)}")
            return
        if done:
            if log.isEnabledFor(logging.INFO):
                ran = self.clock.now() - run.started
                log.info("order %s succeeded in %.3f s", order_id, ran, extra=order_fields(
                    "order.succeeded", run.order, run_ms=round(1000 * ran, 1)))
        else:
            log.warning("order %s: lease lost before completion; result dropped", order_id,
                        extra=order_fields("order.lease_lost", run.order))

    async def fail(self, run: Run, error: str) -> None:
        order_id, token = run.key
        delay = self._retry_delay(run.order)
        status = await retry_store_call(
            lambda: self.store.fail(order_id, token, error, delay),
            doing=f"recording the failure of order {order_id}", logger=log,
            seconds=RECORD_RETRY_SECONDS,
        )
        if status is None:
            log.warning("order %s: lease lost before its failure was recorded", order_id)
        elif status is Status.QUEUED and delay is not None:
            wake = asyncio.get_running_loop().time() + delay + RETRY_WAKE_SLACK
            heapq.heappush(self._retry_times, wake)
            log.info("order %s: attempt %d failed; retry in %.2f s", order_id,
                     run.order.attempts, delay,
                     extra=order_fields("order.retry", run.order, error=error))
        else:
            log.warning("order %s failed for good after %d attempt(s): %s", order_id,
                        run.order.attempts, error,
                        extra=order_fields("order.failed", run.order, error=error))

    def _retry_delay(self, order: Order) -> float | None:
        """Backoff before the next attempt, or None when this was the last (dead letter):
        after its kind's `max_attempts`, else the process's."""
        settings = self.settings
        kind = self.handlers.get(order.kind)
        most = settings.max_attempts if kind is None or kind.max_attempts is None else (
            kind.max_attempts)
        if order.attempts >= most:
            return None
        return retry_delay(order.attempts, settings.backoff_base, settings.backoff_max)

    async def release(self, leases: Iterable[Lease]) -> None:
        """Give leases back, trying for a little while; what cannot be released returns to
        the queue when its lease expires."""
        pairs = [(lease.order.id, lease.token) for lease in leases]
        try:
            released = await retry_store_call(
                lambda: self.store.release(pairs), doing="releasing leases", logger=log,
                seconds=RELEASE_SECONDS, retry_on=(Exception,), from_now=True,
            )
        except Exception as exc:
            log.error(
                "could not release %d lease(s) (%s); those orders run again when "
                "their leases expire", len(pairs), describe_error(exc),
            )
            return
        log.info("released %d of %d lease(s) back to the queue", released, len(pairs))
