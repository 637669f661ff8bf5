"""WorkerPool: claims orders into free slots (no prefetch, invariant 2), runs the handler on
each, records the outcome under the lease token, renews the leases of running orders
(invariant 4), and drains gracefully on shutdown (invariant 5).

Suspects run alone. An order with `rescues > 0` was running when a worker died: it may be the
handler that killed its process (poison), or a healthy order that was running beside it. Run
next to others, a poison order would take them down again and again, until they too reach
`max_rescues` and are failed as poison. So a pool holds at most one suspect, starts it only
when it holds no other order, and claims nothing until its handler is over. A healthy order is
then killed by a neighbour at most once (while it is not yet a suspect); afterwards only its
own handler, or a fault outside the pool, can end its process.

The rule needs heartbeats: without them (a fault-testing switch) every order longer than a
lease is rescued under a live worker, so `rescues` points at no dead process, and running
those orders one at a time would hide the double runs the switch exists to show."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from skipline.clock import Clock, SystemClock
from skipline.config import Settings
from skipline.crashpoints import crash_point
from skipline.deadlines import Deadlines
from skipline.domain.models import JSON, Lease, Order, Status
from skipline.domain.scheduling import retry_delay
from skipline.handlers import Handler
from skipline.logs import order_fields
from skipline.maintenance import LeaseReaper, Pruner
from skipline.metrics import Metrics
from skipline.retrying import (
    EXPECTED_STORE_ERRORS,
    describe_error,
    log_store_error,
    store_pause,
)
from skipline.store.base import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

POLL_SECONDS = 1.0
"""Longest idle wait between claims when the store sends no wake-up."""
RECORD_RETRY_SECONDS = 60.0
"""How long a completion is retried while the store is down; after that the lease expires
and the order runs again (at least once)."""
RELEASE_SECONDS = 2.0
"""How long a drain keeps trying to give leases back."""
CANCEL_GRACE = 0.5
"""How long a drain waits for cancelled handlers (and an in-flight claim) to unwind."""
RETRY_WAKE_SLACK = 0.01
"""Added to our own retry times so a wake-up does not come a hair before the order is ready."""


PLAIN_RESULTS: frozenset[type] = frozenset({str, int, bool})
"""Result types that are always JSON (floats are not: NaN and infinities)."""


def default_worker_id() -> str:
    """Unique per pool, and readable in the store: host, process, random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


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
    """Set by hurry(): a drain stops waiting for running orders."""


class WorkerPool:
    """`settings.workers` slots sharing one claim loop, one heartbeat, one lease reaper and
    one pruner (retention). `metrics`, when given, counts what the pruner deletes."""

    def __init__(
        self, store: Store, settings: Settings, handler: Handler,
        clock: Clock | None = None, worker_id: str | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.handler = handler
        self.clock = clock or SystemClock()
        self.worker_id = worker_id or default_worker_id()
        self.slots = settings.workers
        self._runs: dict[str, Run] = {}
        """Every order this pool holds: handler running, or outcome being recorded."""
        self._busy = 0
        """Runs whose handler is running: each occupies one of the slots."""
        self._slot_waiter: asyncio.Future[None] | None = None
        self._reaper = LeaseReaper(store, settings)
        self._pruner = Pruner(store, settings, metrics=metrics)
        self._signals: Signals | None = None
        self._claim_task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._drain_task: asyncio.Task[None] | None = None
        self._retry_times: list[float] = []
        self._deadlines: Deadlines[Run] | None = None
        self._suspect: Run | None = None
        """The suspect this pool holds (see the module docstring): waiting for the pool to
        empty (no task yet), or running alone. Nothing is claimed while it is set."""
        self._isolate_suspects = settings.heartbeats
        """Run suspects alone (see the module docstring for why only with heartbeats)."""
        self._one_at_a_time = False
        """The last claim brought a suspect: claim one order at a time, so that the suspects
        queued behind it are not claimed only to be released again."""

    @property
    def running(self) -> int:
        """Orders whose handler is running, each occupying a slot. A finished handler frees
        its slot at once, while its outcome is still being recorded (see `held`)."""
        return self._busy

    @property
    def held(self) -> int:
        """Orders this pool holds a lease on: handlers running or outcomes being recorded."""
        return len(self._runs)

    @property
    def signals(self) -> Signals:
        if self._signals is None:
            raise RuntimeError("the WorkerPool has not been started")
        return self._signals

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the reaper, the pruner, the heartbeat and the claim loop. Idempotent."""
        if self._drain_task is not None:
            raise RuntimeError("a drained WorkerPool cannot be started again")
        if self._signals is not None:
            return
        self._signals = Signals(asyncio.Event(), asyncio.Event(), asyncio.Event())
        self._deadlines = Deadlines(self.settings.order_timeout, self._time_out)
        await self._reaper.start()
        await self._pruner.start()
        if self.settings.heartbeats:
            self._heartbeat_task = asyncio.create_task(
                self._heartbeat_loop(), name=f"skipline-heartbeat-{self.worker_id}"
            )
        self._claim_task = asyncio.create_task(
            self._claim_loop(), name=f"skipline-claim-{self.worker_id}"
        )
        log.info("worker %s started with %d slot(s)", self.worker_id, self.slots)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - a grace period, not a cancel
        """Stop claiming, let running orders finish for up to `timeout` seconds, then cancel
        the rest and release their leases so they are queued again at once. Idempotent."""
        if self._drain_task is None:
            self._drain_task = asyncio.create_task(
                self._drain(timeout), name=f"skipline-drain-{self.worker_id}"
            )
        await asyncio.shield(self._drain_task)

    def hurry(self) -> None:
        """Cut a drain short (a fast exit): stop waiting for running orders, cancel them and
        release their leases now. Before the drain starts, it makes the drain that short."""
        if self._signals is not None:
            self._signals.hurry.set()

    async def stop(self) -> None:
        """Drain with the configured `drain_timeout` unless already drained. Idempotent."""
        await self.drain(self.settings.drain_timeout)

    async def _drain(self, grace: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        if self._signals is None:
            return
        log.info("worker %s draining: %d order(s) running", self.worker_id, self.running)
        await self._stop_claiming(deadline)
        await self._finish_or_release(deadline)
        await self._stop_background()
        log.info("worker %s stopped", self.worker_id)

    async def _stop_claiming(self, deadline: float) -> None:
        self.signals.stopping.set()
        self._wake_claimer()
        task = self._claim_task
        if task is None:
            return
        remaining = deadline - asyncio.get_running_loop().time()
        done, _ = await asyncio.wait({task}, timeout=max(remaining, CANCEL_GRACE))
        if not done:
            log.warning("worker %s: a claim is stuck; abandoning it", self.worker_id)
            task.cancel()
            await asyncio.wait({task})

    async def _finish_or_release(self, deadline: float) -> None:
        waiting = self._suspect
        if waiting is not None and waiting.task is None:  # it never started: give it back now
            self._drop_suspect(waiting)
            await self._release([waiting.lease])
        tasks = {run.task for run in self._runs.values() if run.task is not None}
        remaining = deadline - asyncio.get_running_loop().time()
        if tasks and remaining > 0:
            await self._wait_unless_hurried(tasks, remaining)
        leftover = [run for run in self._runs.values() if not run.lease_lost]
        if not leftover:
            return
        log.warning(
            "worker %s: %d order(s) still running at the end of the drain; cancelling them "
            "and releasing their leases", self.worker_id, len(leftover),
        )
        cancelled = [run.task for run in leftover if run.task is not None]
        for task in cancelled:
            task.cancel()
        if cancelled:
            await asyncio.wait(cancelled, timeout=CANCEL_GRACE)
        await self._release(run.lease for run in leftover)

    async def _wait_unless_hurried(self, tasks: set[asyncio.Task[None]], grace: float) -> None:
        finished = asyncio.ensure_future(asyncio.wait(tasks))
        hurried = asyncio.ensure_future(self.signals.hurry.wait())
        await asyncio.wait({finished, hurried}, timeout=grace,
                           return_when=asyncio.FIRST_COMPLETED)
        for waiter in (finished, hurried):
            waiter.cancel()

    async def _stop_background(self) -> None:
        task, self._heartbeat_task = self._heartbeat_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._reaper.stop()
        await self._pruner.stop()
        if self._deadlines is not None:
            self._deadlines.close()

    async def _release(self, leases: Iterable[Lease]) -> None:
        """Give leases back, trying for a little while; what cannot be released returns to
        the queue when its lease expires."""
        pairs = [(lease.order.id, lease.token) for lease in leases]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RELEASE_SECONDS
        failures = 0
        while True:
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    released = await self.store.release(pairs)
            except Exception as exc:
                failures += 1
                if loop.time() + store_pause(failures) >= deadline:
                    log.error(
                        "could not release %d lease(s) (%s); those orders run again when "
                        "their leases expire", len(pairs), describe_error(exc),
                    )
                    return
                log_store_error(log, "releasing leases", exc)
                await asyncio.sleep(store_pause(failures))
            else:
                log.info("released %d of %d lease(s) back to the queue", released, len(pairs))
                return

    # --- claiming -----------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        """Claim as many orders as there are free slots; otherwise wait for work or a slot."""
        failures = 0
        while not self.signals.stopping.is_set():
            try:
                await self._claim_or_wait()
            except Exception as exc:
                failures += 1
                log_store_error(log, f"worker {self.worker_id}: claiming orders", exc)
                await self._pause(store_pause(failures))
            else:
                failures = 0

    async def _claim_or_wait(self) -> None:
        self.signals.slot_freed.clear()
        if self._suspect is not None:
            await self._tend_suspect(self._suspect)
            return
        free = self._free_slots()
        if free <= 0:
            await self._wait_for_slot()
            return
        limit = 1 if self._one_at_a_time else free
        leases = await self.store.claim(self.worker_id, limit, self.settings.lease_seconds)
        if leases:
            crash_point("after_claim")
            await self._launch(leases)
        if len(leases) < limit and self._suspect is None:
            await self._wait_for_work_or_slot(True)

    def _free_slots(self) -> int:
        """Slots whose handler has finished. Outcomes still being recorded do not hold a slot,
        but at most `slots` of them may pile up (a store too slow to record stops claims)."""
        return min(self.slots - self._busy, 2 * self.slots - len(self._runs))

    async def _wait_for_slot(self) -> None:
        """Every slot is busy: wait on one future that the first handler to finish (or a
        drain) resolves directly. The claim then runs in the very next loop iteration, before
        the writes queued in the iteration the handlers finished in are handed to the store, so
        with SQLite the claim shares one transaction with those orders' completions."""
        if self.signals.stopping.is_set():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._slot_waiter = waiter
        try:
            await waiter
        finally:
            self._slot_waiter = None

    def _wake_claimer(self) -> None:
        self.signals.slot_freed.set()
        waiter = self._slot_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _launch(self, leases: Sequence[Lease]) -> None:
        """Start the healthy orders at once. The first suspect is held until they are over
        (it runs alone); any other suspect is released, to be claimed again later (here, one
        order at a time, or by another pool)."""
        if self.signals.stopping.is_set():
            await self._release(leases)
            return
        loop = asyncio.get_running_loop()  # once per claim, not per order (it costs a getpid)
        extra: list[Lease] = []
        self._one_at_a_time = False
        for lease in leases:
            if lease.order.rescues and self._isolate_suspects:
                self._one_at_a_time = True
                if self._suspect is None:
                    self._suspect = self._runs[lease.order.id] = Run(lease, self.clock.now())
                else:
                    extra.append(lease)
                continue
            run = self._runs[lease.order.id] = Run(lease, started=0.0)
            self._start(run, loop)
        if extra:
            log.info("worker %s: releasing %d more suspect order(s); one runs at a time",
                     self.worker_id, len(extra))
            await self._release(extra)

    async def _tend_suspect(self, run: Run) -> None:
        """Start the held suspect once no other handler runs and it is the only order this pool
        holds (outcomes still being recorded count: their leases would die with the process
        too); until its handler is over, just wait. Its lease is renewed first, so it starts
        with a whole lease that is known to be ours."""
        if run.task is not None or self._busy or len(self._runs) > 1:
            await self._wait_for_slot()
            return
        held = await self.store.heartbeat([run.key], self.settings.lease_seconds)
        if self._suspect is not run or self.signals.stopping.is_set():
            return  # lost meanwhile, or a drain began (the drain releases it)
        if run.order.id not in held:
            log.warning("order %s: lease lost while it waited to run alone", run.order.id)
            self._drop_suspect(run)
            return
        order = run.order
        log.info("order %s: running it alone (its worker died %d time(s) while it ran)",
                 order.id, order.rescues)
        self._start(run, asyncio.get_running_loop())

    def _start(self, run: Run, loop: asyncio.AbstractEventLoop) -> None:
        """Start a held order's handler: it now occupies a slot."""
        run.started = self.clock.now()
        run.task = loop.create_task(self._run_order(run), name=f"skipline-order-{run.order.id}")
        self._busy += 1

    def _drop_suspect(self, run: Run) -> None:
        """Forget a suspect that never started (lease lost, or released by a drain)."""
        if self._suspect is run:
            self._suspect = None
        if self._runs.get(run.order.id) is run:
            del self._runs[run.order.id]
        self._wake_claimer()

    async def _wait_for_work_or_slot(self, has_free_slot: bool) -> None:
        """Whichever comes first: the store says work may be ready, a slot frees, a drain
        begins, or the poll interval passes."""
        signals = self.signals
        waiters: list[asyncio.Task[object]] = [
            asyncio.create_task(signals.stopping.wait()),
            asyncio.create_task(signals.slot_freed.wait()),
        ]
        if has_free_slot:
            waiters.append(asyncio.create_task(self.store.wait_for_work(self._poll_seconds())))
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        for waiter in done:
            error = None if waiter.cancelled() else waiter.exception()
            if error is not None:
                raise error

    def _poll_seconds(self) -> float:
        """The poll interval, shortened when one of our own failed orders is due for a retry
        sooner (the store sends no wake-up when a backoff ends)."""
        now = asyncio.get_running_loop().time()
        while self._retry_times and self._retry_times[0] <= now:
            heapq.heappop(self._retry_times)
        if self._retry_times:
            return min(POLL_SECONDS, self._retry_times[0] - now)
        return POLL_SECONDS

    async def _pause(self, seconds: float) -> None:
        """Sleep, unless a drain begins first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.signals.stopping.wait(), seconds)

    # --- running one order --------------------------------------------------------------------
    async def _run_order(self, run: Run) -> None:
        order = run.order
        try:
            outcome = await self._execute(run)
            self._free_slot(run)
            if outcome.error is None:
                crash_point("before_complete")
                await self._complete(run, outcome.result)
            else:
                await self._fail(run, outcome.error)
        except asyncio.CancelledError:
            why = "its lease was lost" if run.lease_lost else "the worker is draining"
            log.info("order %s: handler cancelled because %s", order.id, why,
                     extra=order_fields("order.cancelled", order, error=why))
            raise
        except Exception as exc:
            log.error(
                "order %s: could not record its outcome (%s); it runs again once its lease "
                "expires", order.id, describe_error(exc), exc_info=exc,
            )
        finally:
            self._free_slot(run)
            if self._runs.get(order.id) is run:
                del self._runs[order.id]
                self._wake_claimer()  # a cap on recorded outcomes may have held claims back

    def _free_slot(self, run: Run) -> None:
        """The handler is over: its slot is free for the next claim. Idempotent."""
        if run.handler_done:
            return
        run.handler_done = True
        self._busy -= 1
        if self._suspect is run:  # it did not take the process down: claims may resume
            self._suspect = None
        self._wake_claimer()

    async def _execute(self, run: Run) -> Outcome:
        """Run the handler under the order timeout; never raises except for our own cancel."""
        order = run.order
        deadlines = self._deadlines
        assert deadlines is not None
        tick = deadlines.add(run)
        try:
            result = await self.handler(order)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if run.timed_out and task is not None and task.uncancel() == 0:
                return self._timed_out(order)
            if task is not None and task.cancelling():
                raise
            return self._handler_error(order, exc)
        except Exception as exc:
            return self._handler_error(order, exc)
        finally:
            deadlines.discard(run, tick)
        if run.timed_out:  # the handler swallowed our cancellation and finished anyway
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        return self._checked_result(order, result)

    def _time_out(self, run: Run) -> None:
        """The order timeout has passed with the handler still running: cancel it."""
        if run.handler_done or run.task is None:
            return
        run.timed_out = True
        run.task.cancel()

    def _timed_out(self, order: Order) -> Outcome:
        limit = self.settings.order_timeout
        log.warning("order %s: handler timed out after %g s", order.id, limit,
                    extra=order_fields("order.timeout", order, run_ms=1000 * limit))
        return Outcome(error=f"TimeoutError: the handler ran longer than {limit:g} s")

    def _handler_error(self, order: Order, exc: BaseException) -> Outcome:
        log.warning(
            "order %s: handler failed on attempt %d", order.id, order.attempts, exc_info=exc,
            extra=order_fields("order.handler_error", order, error=describe_error(exc)),
        )
        return Outcome(error=describe_error(exc))

    def _checked_result(self, order: Order, result: JSON) -> Outcome:
        """A result the store could not keep as JSON is a failed run, not a lost order."""
        if result is None or type(result) in PLAIN_RESULTS:
            return Outcome(result=result)
        try:
            json.dumps(result, allow_nan=False)
        except (TypeError, ValueError) as exc:
            log.warning("order %s: handler returned a non-JSON result: %s", order.id, exc)
            return Outcome(error=f"the handler's result is not JSON-serialisable: {exc}")
        return Outcome(result=result)

    # --- recording the outcome ----------------------------------------------------------------
    async def _complete(self, run: Run, result: JSON) -> None:
        """Record success under our token. A store that refuses the result itself (not an
        outage) gets the run recorded as a failure instead."""
        order_id, token = run.key
        try:
            try:  # the first attempt directly: no retry machinery unless the store is down
                done = await self.store.complete(order_id, token, result)
            except EXPECTED_STORE_ERRORS as exc:
                done = await self._with_retries(
                    lambda: self.store.complete(order_id, token, result), "completing order",
                    order_id, first_error=exc,
                )
        except EXPECTED_STORE_ERRORS:
            raise
        except Exception as exc:
            log.error("order %s: the store refused its result", order_id, exc_info=exc)
            await self._fail(run, f"the result could not be stored: {describe_error(exc)}")
            return
        if done:
            if log.isEnabledFor(logging.INFO):
                ran = self.clock.now() - run.started
                log.info("order %s succeeded in %.3f s", order_id, ran, extra=order_fields(
                    "order.succeeded", run.order, run_ms=round(1000 * ran, 1)))
        else:
            log.warning("order %s: lease lost before completion; result dropped", order_id,
                        extra=order_fields("order.lease_lost", run.order))

    async def _fail(self, run: Run, error: str) -> None:
        order_id, token = run.key
        delay = self._retry_delay(run.order)
        status = await self._with_retries(
            lambda: self.store.fail(order_id, token, error, delay),
            "recording the failure of order", order_id,
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
        """Backoff before the next attempt, or None when this was the last (dead letter)."""
        settings = self.settings
        if order.attempts >= settings.max_attempts:
            return None
        return retry_delay(order.attempts, settings.backoff_base, settings.backoff_max)

    async def _with_retries(
        self, call: Callable[[], Awaitable[T]], doing: str, order_id: str,
        first_error: BaseException | None = None,
    ) -> T:
        """Retry `call` while the store is unreachable, for up to RECORD_RETRY_SECONDS from
        the first failure (`first_error` when the caller already made the first attempt)."""
        deadline: float | None = None
        failures = 0
        error = first_error
        while True:
            if error is not None:
                now = asyncio.get_running_loop().time()
                if deadline is None:
                    deadline = now + RECORD_RETRY_SECONDS
                failures += 1
                if now + store_pause(failures) > deadline:
                    raise error
                log_store_error(log, f"{doing} {order_id}", error)
                await asyncio.sleep(store_pause(failures))
            try:
                return await call()
            except EXPECTED_STORE_ERRORS as exc:
                error = exc

    # --- heartbeats ---------------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        """Renew every running lease with one store call every third of a lease."""
        interval = self.settings.lease_seconds / 3
        failures = 0
        while True:
            await asyncio.sleep(interval if failures == 0 else min(interval, store_pause(failures)))
            try:
                await self._heartbeat_once()
            except Exception as exc:
                failures += 1
                log_store_error(log, f"worker {self.worker_id}: renewing leases", exc)
            else:
                failures = 0

    async def _heartbeat_once(self) -> None:
        runs = list(self._runs.values())
        if not runs:
            return
        held = await self.store.heartbeat([run.key for run in runs], self.settings.lease_seconds)
        for run in runs:
            if run.order.id not in held:
                self._lose(run)

    def _lose(self, run: Run) -> None:
        """Another worker may own the order now: stop working on it. A run already recording
        its outcome is left alone; the fenced complete/fail will tell."""
        if run.handler_done or run.lease_lost or self._runs.get(run.order.id) is not run:
            return
        run.lease_lost = True
        if run.task is None:  # a suspect that has not started: there is nothing to cancel
            log.warning("order %s: lease lost while it waited to run alone", run.order.id)
            self._drop_suspect(run)
            return
        log.warning("order %s: lease lost; cancelling its handler", run.order.id)
        run.task.cancel()
