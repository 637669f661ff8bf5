"""WorkerPool: claims orders into free slots (no prefetch: invariant 2 (docs/architecture.md)),
runs the handler on each, records the outcome under the lease token, renews the leases of
running orders (invariant 4), and drains gracefully on shutdown (invariant 5). It composes the
other worker modules (executor, recorder, heartbeat, suspect gate, its row in the worker
registry); the lease reaper and the pruner run beside it, started by the process runtime
(skipline.maintenance)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Sequence

from skipline.clock import Clock, SystemClock
from skipline.config import Settings
from skipline.crashpoints import crash_point
from skipline.domain.models import Lease
from skipline.domain.workers import order_kind
from skipline.handlers import Handler
from skipline.logs import order_fields
from skipline.metrics import Metrics
from skipline.registry import Handlers
from skipline.retrying import describe_error, log_store_error, store_pause
from skipline.store.base import Store
from skipline.worker.capacity import KindCapacity
from skipline.worker.executor import Executor
from skipline.worker.heartbeat import Heartbeat
from skipline.worker.presence import Presence
from skipline.worker.recorder import Recorder
from skipline.worker.runs import Run, Signals
from skipline.worker.suspects import SuspectGate

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
"""Longest idle wait between claims when the store sends no wake-up."""
DUE_SLACK = 0.01
"""Added to a waiting order's due time before the claim that takes it: a wake-up a hair early
would find it not ready yet. Also the shortest idle wait, so an order that stays due but
unclaimed (being promoted by another claimer) cannot make the pool spin."""
CANCEL_GRACE = 0.5
"""How long a drain waits for cancelled handlers (and an in-flight claim) to unwind."""


def default_worker_id() -> str:
    """Unique per pool, and readable in the store: host, process, random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class WorkerPool:
    """`settings.workers` slots sharing one claim loop and one heartbeat. It claims only the
    kinds its handlers serve (a bare handler serves the kind `default`)."""

    def __init__(
        self, store: Store, settings: Settings, handler: Handler | Handlers,
        clock: Clock | None = None, worker_id: str | None = None, metrics: Metrics | None = None,
    ) -> None:
        """`metrics`, when given, gets handler run times, failures, retries and dead letters
        (the process's /metrics)."""
        self.store = store
        self.settings = settings
        self.handlers = handler if isinstance(handler, Handlers) else Handlers.single(handler)
        self._capacity = KindCapacity(self.handlers)
        self.clock = clock or SystemClock()
        self.worker_id = worker_id or default_worker_id()
        self.slots = settings.workers
        self._runs: dict[str, Run] = {}
        """Every order this pool holds: handler running, or outcome being recorded."""
        self._busy = 0
        """Runs whose handler is running: each occupies one of the slots."""
        self._slot_waiter: asyncio.Future[None] | None = None
        self._signals: Signals | None = None
        self._claim_task: asyncio.Task[None] | None = None
        self._drain_task: asyncio.Task[None] | None = None
        self._executor = Executor(self.handlers, settings.order_timeout)
        self._metrics = metrics
        self._recorder = Recorder(store, settings, self.clock, self.handlers, metrics)
        self._suspects = SuspectGate(enabled=settings.heartbeats)
        self._heartbeat = Heartbeat(
            store, settings, self.worker_id, self._runs.values, self._lose
        ) if settings.heartbeats else None
        self._presence = Presence(store, settings, self.worker_id, tuple(self.kinds),
                                  lambda: self._busy)

    @property
    def kinds(self) -> list[str]:
        """The kinds this pool serves, sorted (what it claims, and what the worker registry
        shows)."""
        return self.handlers.names

    def running_of(self, kind: str) -> int:
        """Orders of `kind` whose handler is running here."""
        return self._capacity.running(kind)

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
        """Start the heartbeat and the claim loop. Idempotent."""
        if self._drain_task is not None:
            raise RuntimeError("a drained WorkerPool cannot be started again")
        if self._signals is not None:
            return
        self._signals = Signals(asyncio.Event(), asyncio.Event(), asyncio.Event())
        self._executor.open()
        self._presence.start()
        if self._heartbeat is not None:
            self._heartbeat.start()
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
        deadline = asyncio.get_running_loop().time() + grace
        if self._signals is None:
            return
        log.info("worker %s draining: %d order(s) running", self.worker_id, self.running)
        await self._stop_claiming(deadline)
        await self._release_waiting_suspect()
        await self._finish_or_release(deadline)
        if self._heartbeat is not None:
            await self._heartbeat.stop()
        await self._presence.stop()
        self._executor.close()
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

    async def _release_waiting_suspect(self) -> None:
        """A suspect that never started is given back at once."""
        waiting = self._suspects.waiting()
        if waiting is not None:
            self._drop_suspect(waiting)
            await self._recorder.release([waiting.lease])

    async def _finish_or_release(self, deadline: float) -> None:
        """Let the handlers run until the deadline; cancel what is left and give it back."""
        tasks = {run.task for run in self._runs.values() if run.task is not None}
        remaining = deadline - asyncio.get_running_loop().time()
        if tasks and remaining > 0:
            await self._wait_unless_hurried(tasks, remaining)
        leftover = [run for run in self._runs.values() if not run.lease_lost]
        if leftover:
            await self._cancel_and_release(leftover)

    async def _wait_unless_hurried(self, tasks: set[asyncio.Task[None]], grace: float) -> None:
        finished = asyncio.ensure_future(asyncio.wait(tasks))
        hurried = asyncio.ensure_future(self.signals.hurry.wait())
        await asyncio.wait({finished, hurried}, timeout=grace,
                           return_when=asyncio.FIRST_COMPLETED)
        for waiter in (finished, hurried):
            waiter.cancel()

    async def _cancel_and_release(self, leftover: list[Run]) -> None:
        log.warning(
            "worker %s: %d order(s) still running at the end of the drain; cancelling them "
            "and releasing their leases", self.worker_id, len(leftover),
        )
        cancelled = [run.task for run in leftover if run.task is not None]
        for task in cancelled:
            task.cancel()
        if cancelled:
            await asyncio.wait(cancelled, timeout=CANCEL_GRACE)
        await self._recorder.release(run.lease for run in leftover)

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
        suspect = self._suspects.held
        if suspect is not None:
            await self._tend_suspect(suspect)
            return
        free = self._free_slots()
        if free <= 0:
            await self._wait_for_slot()
            return
        kinds, limit = self._capacity.claimable(self._suspects.claim_limit(free))
        if not kinds:  # every kind is at its concurrency: only a finished handler helps
            await self._wait_for_slot()
            return
        leases = await self.store.claim(
            self.worker_id, limit, self.settings.lease_seconds, kinds)
        if leases:
            crash_point("after_claim")
            await self._launch(leases)
        if len(leases) < limit and self._suspects.held is None:
            await self._wait_for_work_or_slot(kinds)

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
            await self._recorder.release(leases)
            return
        loop = asyncio.get_running_loop()  # once per claim, not per order (it costs a getpid)
        screened = self._suspects.screen(leases)
        for lease in screened.healthy:
            run = self._runs[lease.order.id] = Run(lease, started=0.0)
            self._start(run, loop)
        if screened.suspect is not None:
            suspect = Run(screened.suspect, self.clock.now())
            self._runs[suspect.order.id] = suspect
            self._suspects.hold(suspect)
        if screened.extra:
            log.info("worker %s: releasing %d more suspect order(s); one runs at a time",
                     self.worker_id, len(screened.extra))
            await self._recorder.release(screened.extra)

    async def _tend_suspect(self, run: Run) -> None:
        """Start the held suspect once no other handler runs and it is the only order this pool
        holds (outcomes still being recorded count: their leases would die with the process
        too); until its handler is over, just wait. Its lease is renewed first, so it starts
        with a whole lease that is known to be ours."""
        if run.task is not None or self._busy or len(self._runs) > 1:
            await self._wait_for_slot()
            return
        held = await self.store.heartbeat([run.key], self.settings.lease_seconds)
        if not self._suspects.holds(run) or self.signals.stopping.is_set():
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
        self._capacity.started(run.order.kind)

    def _drop_suspect(self, run: Run) -> None:
        """Forget a suspect that never started (lease lost, or released by a drain)."""
        self._suspects.forget(run)
        if self._runs.get(run.order.id) is run:
            del self._runs[run.order.id]
        self._wake_claimer()

    async def _wait_for_work_or_slot(self, kinds: Sequence[str]) -> None:
        """Whichever comes first: the store says work may be ready, a slot frees, a drain
        begins, the earliest waiting order of our kinds comes due, or the poll interval
        passes."""
        signals = self.signals
        idle = await self._idle_seconds(kinds)
        waiters: list[asyncio.Task[object]] = [
            asyncio.create_task(signals.stopping.wait()),
            asyncio.create_task(signals.slot_freed.wait()),
            asyncio.create_task(self.store.wait_for_work(idle)),
        ]
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

    async def _idle_seconds(self, kinds: Sequence[str]) -> float:
        """How long to wait for a wake-up: the poll interval, cut short when a waiting order of
        our kinds (scheduled, or backing off, whoever failed it) comes due sooner. No store
        notifies when a due time passes, so the pool sets its own alarm; a submission that is
        due sooner wakes the wait, and the next one reads the new time."""
        seconds = self._poll_seconds()
        due = await self.store.next_due(kinds)
        if due is not None:
            seconds = min(seconds, max(due, 0.0) + DUE_SLACK)
        return seconds

    def _poll_seconds(self) -> float:
        """The poll interval, shortened when one of our own failed orders is due for a retry
        sooner (known without a read)."""
        now = asyncio.get_running_loop().time()
        retry = self._recorder.next_retry(now)
        return POLL_SECONDS if retry is None else min(POLL_SECONDS, retry - now)

    async def _pause(self, seconds: float) -> None:
        """Sleep, unless a drain begins first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.signals.stopping.wait(), seconds)

    # --- running one order --------------------------------------------------------------------
    async def _run_order(self, run: Run) -> None:
        order = run.order
        try:
            outcome = await self._executor.execute(run)
            self._free_slot(run)
            if self._metrics is not None:
                self._metrics.handler_ran(order_kind(order), self.clock.now() - run.started,
                                          outcome.error is not None)
            if outcome.error is None:
                crash_point("before_complete")
                await self._recorder.complete(run, outcome.result)
            else:
                await self._recorder.fail(run, outcome.error)
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
        self._capacity.finished(run.order.kind)
        self._suspects.forget(run)  # it did not take the process down: claims may resume
        self._wake_claimer()

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
