"""The two shapes background parts share: one store call retried for a while
(`retry_store_call`), and a loop that outlives failed passes (`Periodic`)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from skipline.domain.errors import StoreUnavailable
from skipline.retrying import FIRST_PAUSE, Periodic, retry_store_call

log = logging.getLogger("test.retrying")


class Calls:
    """A store call that fails its first `failures` times, then returns how often it ran."""

    def __init__(self, failures: int, error: BaseException | None = None) -> None:
        self.left = failures
        self.made = 0
        self.error = error or StoreUnavailable("down")

    async def __call__(self) -> int:
        self.made += 1
        if self.left:
            self.left -= 1
            raise self.error
        return self.made


async def test_a_call_is_retried_until_the_store_answers() -> None:
    call = Calls(failures=1)
    assert await retry_store_call(call, doing="testing", logger=log, seconds=5.0) == 2


async def test_the_last_error_is_raised_once_the_window_is_over() -> None:
    call = Calls(failures=100)
    with pytest.raises(StoreUnavailable):
        await retry_store_call(call, doing="testing", logger=log, seconds=FIRST_PAUSE * 1.5)
    assert call.made == 2  # the first pause fits in the window, the second does not


async def test_a_first_error_made_by_the_caller_counts_as_an_attempt() -> None:
    call = Calls(failures=0)
    made = await retry_store_call(call, doing="testing", logger=log, seconds=5.0,
                                  first_error=StoreUnavailable("down"))
    assert made == 1


async def test_only_the_errors_named_are_retried() -> None:
    call = Calls(failures=1, error=ValueError("a bug"))
    with pytest.raises(ValueError):
        await retry_store_call(call, doing="testing", logger=log, seconds=5.0)
    assert call.made == 1


async def test_from_now_bounds_a_hanging_attempt_too() -> None:
    async def hang() -> None:
        await asyncio.sleep(30)

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await retry_store_call(hang, doing="testing", logger=log, seconds=0.2,
                               retry_on=(Exception,), from_now=True)
    assert loop.time() - started < 1.0


async def test_a_periodic_loop_lives_through_failed_passes_and_stops() -> None:
    call = Calls(failures=2)
    loop = Periodic(call, interval=0.01, doing="testing", logger=log, name="test-periodic",
                    retry_sooner=True)
    loop.start(first_delay=0.0)
    assert loop.running
    for _ in range(200):
        if call.made >= 4:
            break
        await asyncio.sleep(0.01)
    await loop.stop()
    await loop.stop()
    assert call.made >= 4 and not loop.running


def test_after_failures_the_delay_grows_or_shrinks_as_asked() -> None:
    def work() -> asyncio.Future[None]:
        raise AssertionError("never run")

    patient = Periodic(work, interval=0.1, doing="t", logger=log, name="t")
    eager = Periodic(work, interval=60.0, doing="t", logger=log, name="t", retry_sooner=True)
    assert patient._delay(0) == 0.1 and patient._delay(1) >= FIRST_PAUSE * 0.9 > 0.1
    assert eager._delay(0) == 60.0 and eager._delay(1) <= FIRST_PAUSE * 1.1 < 60.0
