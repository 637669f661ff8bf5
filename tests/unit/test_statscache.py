"""The statistics cache: a flood of readers costs one store reading per period, concurrent
readers share one reading, a write through the service is seen at once, a failed reading is
no cached value."""

from __future__ import annotations

import asyncio

import pytest

from skipline.domain.errors import StoreUnavailable
from skipline.domain.models import StoreStats
from skipline.statscache import StatsCache


class CountingRead:
    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False

    async def __call__(self) -> StoreStats:
        self.calls += 1
        await self.gate.wait()
        if self.fail:
            raise StoreUnavailable()
        return StoreStats(finished_last_minute=self.calls)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_flood_of_readers_costs_one_reading() -> None:
    read, clock = CountingRead(), Clock()
    cache = StatsCache(read, 1.0, clock)
    read.gate.clear()
    readers = [asyncio.create_task(cache.get()) for _ in range(100)]
    await asyncio.sleep(0)
    read.gate.set()
    results = await asyncio.gather(*readers)
    assert read.calls == 1 and {r.finished_last_minute for r in results} == {1}
    clock.now += 0.9
    await cache.get()
    assert read.calls == 1
    clock.now += 0.2
    assert (await cache.get()).finished_last_minute == 2


async def test_invalidate_makes_the_next_reader_read_again() -> None:
    read = CountingRead()
    cache = StatsCache(read, 1.0, Clock())
    await cache.get()
    cache.invalidate()
    assert (await cache.get()).finished_last_minute == 2


async def test_a_reading_begun_before_a_write_is_not_kept() -> None:
    read = CountingRead()
    cache = StatsCache(read, 1.0, Clock())
    read.gate.clear()
    early = asyncio.create_task(cache.get())
    await asyncio.sleep(0)
    cache.invalidate()
    read.gate.set()
    await early
    assert (await cache.get()).finished_last_minute == 2


async def test_a_ttl_of_0_reads_every_time() -> None:
    read = CountingRead()
    cache = StatsCache(read, 0.0, Clock())
    for _ in range(3):
        await cache.get()
    assert read.calls == 3


async def test_a_failed_reading_is_raised_and_not_kept() -> None:
    read = CountingRead()
    cache = StatsCache(read, 1.0, Clock())
    read.fail = True
    with pytest.raises(StoreUnavailable):
        await cache.get()
    read.fail = False
    assert (await cache.get()).finished_last_minute == 2


class SlowRead(CountingRead):
    """A reading that takes `seconds` on the test's clock."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        super().__init__()
        self.clock = clock
        self.seconds = seconds

    async def __call__(self) -> StoreStats:
        self.clock.now += self.seconds
        return await super().__call__()


async def test_a_paced_cache_keeps_a_slow_reading_for_pace_times_its_cost() -> None:
    clock = Clock()
    read = SlowRead(clock, 0.2)
    cache = StatsCache(read, 1.0, clock, pace=20)
    await cache.get()
    clock.now += 3.5  # past the ttl, within 20 x 0.2 s of the reading's start
    assert (await cache.get()).finished_last_minute == 1
    clock.now += 0.6
    assert (await cache.get()).finished_last_minute == 2
    read.seconds = 0.01  # fast again: the ttl rules
    clock.now += 4.1
    await cache.get()
    clock.now += 1.1
    assert (await cache.get()).finished_last_minute == 4
