"""How background parts live through a store that is briefly down: describe the error in one
line, log it at the right level, and wait a little longer after each consecutive failure; retry
one store call for a while (`retry_store_call`), or run a background loop that outlives failed
passes (`Periodic`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from skipline.domain.errors import StoreUnavailable
from skipline.domain.scheduling import retry_delay

EXPECTED_STORE_ERRORS: tuple[type[BaseException], ...] = (StoreUnavailable, OSError)
"""Errors that mean "the store cannot be reached right now" rather than a bug."""

T = TypeVar("T")

FIRST_PAUSE = 0.5
LONGEST_PAUSE = 5.0


def describe_error(exc: BaseException) -> str:
    """'Type: message' with no traceback: what we record on an order and show to people."""
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def store_pause(failures: int) -> float:
    """Seconds to wait after `failures` consecutive store errors (0.5 s growing to 5 s)."""
    return retry_delay(max(1, failures), FIRST_PAUSE, LONGEST_PAUSE)


def log_store_error(logger: logging.Logger, doing: str, exc: BaseException) -> None:
    """An outage is a warning; anything else is unexpected and gets its traceback."""
    if isinstance(exc, EXPECTED_STORE_ERRORS):
        logger.warning("%s failed, will retry: %s", doing, describe_error(exc))
    else:
        logger.error("%s failed unexpectedly, will retry", doing, exc_info=exc)


async def attempt_logged(
    work: Callable[[], Awaitable[object]], doing: str, logger: logging.Logger
) -> bool:
    """One pass of a background loop: False (after logging the error) if it failed."""
    try:
        await work()
    except Exception as exc:
        log_store_error(logger, doing, exc)
        return False
    return True


async def retry_store_call(
    call: Callable[[], Awaitable[T]], *, doing: str, logger: logging.Logger, seconds: float,
    retry_on: tuple[type[BaseException], ...] = EXPECTED_STORE_ERRORS,
    first_error: BaseException | None = None, from_now: bool = False,
) -> T:
    """`call()`, retried after each error in `retry_on` (logged, then a store_pause), for up to
    `seconds` from the first failure; the last error is raised once the next pause would end
    past that. `first_error`: the caller already made a first attempt, which failed so.
    `from_now`: the `seconds` count from now, and bound every attempt too (for a caller that
    has a deadline of its own, such as a drain)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds if from_now else None
    failures = 0
    error = first_error
    while True:
        if error is not None:
            now = loop.time()
            deadline = now + seconds if deadline is None else deadline
            failures += 1
            if now + store_pause(failures) >= deadline:
                raise error
            log_store_error(logger, doing, error)
            await asyncio.sleep(store_pause(failures))
        try:
            if not from_now:
                return await call()
            async with asyncio.timeout(max(0.0, (deadline or 0.0) - loop.time())):
                return await call()
        except retry_on as exc:
            error = exc


class Periodic:
    """A background loop that does `work` every `interval` seconds until stopped. A failed pass
    is logged and never ends the loop; after `n` failures in a row the next pass comes after
    `store_pause(n)` instead of the interval when that is longer (a store that is down is not
    hammered), or, with `retry_sooner`, when it is shorter (work that must not lapse, such as
    renewing leases)."""

    def __init__(
        self, work: Callable[[], Awaitable[object]], *, interval: float, doing: str,
        logger: logging.Logger, name: str, retry_sooner: bool = False,
    ) -> None:
        self.work = work
        self.interval = interval
        self.doing = doing
        self.logger = logger
        self.name = name
        self.retry_sooner = retry_sooner
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self, *, first_delay: float | None = None, failures: int = 0) -> None:
        """Start the loop: the first pass after `first_delay` (default: the delay that
        `failures` earlier failures in a row call for). Idempotent."""
        if self._task is None:
            delay = self._delay(failures) if first_delay is None else first_delay
            self._task = asyncio.create_task(self._run(delay, failures), name=self.name)

    async def stop(self) -> None:
        """Cancel the loop and wait until it has unwound. Idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def _delay(self, failures: int) -> float:
        if failures == 0:
            return self.interval
        pause = store_pause(failures)
        return min(self.interval, pause) if self.retry_sooner else max(self.interval, pause)

    async def _run(self, delay: float, failures: int) -> None:
        while True:
            await asyncio.sleep(delay)
            ok = await attempt_logged(self.work, self.doing, self.logger)
            failures = 0 if ok else failures + 1
            delay = self._delay(failures)
