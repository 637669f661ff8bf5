"""Running one order's handler: under the order timeout, with whatever it raises or returns
turned into an Outcome to record (a result the store can keep as JSON, or an error text)."""

from __future__ import annotations

import asyncio
import json
import logging

from skipline.deadlines import Deadlines
from skipline.domain.models import JSON, Order
from skipline.logs import order_fields
from skipline.registry import Handlers
from skipline.retrying import describe_error
from skipline.worker.runs import Outcome, Run

log = logging.getLogger(__name__)

PLAIN_RESULTS: frozenset[type] = frozenset({str, int, bool})
"""Result types that are always JSON (floats are not: NaN and infinities)."""


class Executor:
    """Runs handlers, each inside its Run's task, and cancels those that outlive their kind's
    timeout (else the order timeout). Open it inside the running loop (its deadlines keep the
    loop): one set of deadlines per distinct timeout, since each ticks at one period."""

    def __init__(self, handlers: Handlers, order_timeout: float) -> None:
        self.handlers = handlers
        self.order_timeout = order_timeout
        self._deadlines: dict[float, Deadlines[Run]] = {}

    def open(self) -> None:
        timeouts = {self.order_timeout} | {
            kind.timeout for kind in self.handlers if kind.timeout is not None}
        self._deadlines = {
            seconds: Deadlines(seconds, self._time_out) for seconds in sorted(timeouts)}

    def close(self) -> None:
        for deadlines in self._deadlines.values():
            deadlines.close()

    def timeout_of(self, order: Order) -> float:
        kind = self.handlers.get(order.kind)
        return self.order_timeout if kind is None or kind.timeout is None else kind.timeout

    async def execute(self, run: Run) -> Outcome:
        """Run the handler under its timeout; never raises except for our own cancel."""
        order = run.order
        kind = self.handlers.get(order.kind)
        if kind is None:  # the claim asked for our kinds only: a store bug, not a crash
            return Outcome(error=f"no handler for kind {order.kind!r} in this worker")
        deadlines = self._deadlines[self.timeout_of(order)]
        tick = deadlines.add(run)
        try:
            result = await kind.handler(order)
        except asyncio.CancelledError as exc:
            return self._cancelled(run, exc)
        except Exception as exc:
            return self._handler_error(order, exc)
        finally:
            deadlines.discard(run, tick)
        if run.timed_out:  # the handler swallowed our cancellation and finished anyway
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        return self._checked_result(order, result)

    def _cancelled(self, run: Run, exc: asyncio.CancelledError) -> Outcome:
        """Our own timeout is a failed run; a cancel from outside (a drain, a lost lease) goes
        on up; a CancelledError the handler raised of its own accord is its error."""
        task = asyncio.current_task()
        if run.timed_out and task is not None and task.uncancel() == 0:
            return self._timed_out(run.order)
        if task is not None and task.cancelling():
            raise exc
        return self._handler_error(run.order, exc)

    def _time_out(self, run: Run) -> None:
        """The order timeout has passed with the handler still running: cancel it."""
        if run.handler_done or run.task is None:
            return
        run.timed_out = True
        run.task.cancel()

    def _timed_out(self, order: Order) -> Outcome:
        limit = self.timeout_of(order)
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
