"""Deadlines: one timer per tick for a whole pool's order timeouts."""

from __future__ import annotations

import asyncio

import pytest

from skipline.deadlines import Deadlines


async def test_an_item_still_there_expires_within_one_tick_of_its_deadline() -> None:
    loop = asyncio.get_running_loop()
    expired: dict[str, float] = {}
    deadlines: Deadlines[str] = Deadlines(0.2, lambda item: expired.setdefault(item, loop.time()))
    added = loop.time()
    deadlines.add("slow")
    finished = deadlines.add("quick")
    deadlines.discard("quick", finished)
    await asyncio.sleep(0.2 + 2 * deadlines.tick)
    assert list(expired) == ["slow"]
    assert 0.2 <= expired["slow"] - added <= 0.2 + 2 * deadlines.tick
    assert len(deadlines) == 0


async def test_many_items_share_one_timer_per_tick() -> None:
    loop = asyncio.get_running_loop()
    expired: list[int] = []
    deadlines: Deadlines[int] = Deadlines(10.0, expired.append)
    before = len(loop._scheduled)  # type: ignore[attr-defined]
    ticks = {deadlines.add(n) for n in range(1000)}
    assert len(loop._scheduled) - before == len(ticks) <= 2  # type: ignore[attr-defined]
    assert len(deadlines) == 1000
    deadlines.close()
    assert len(deadlines) == 0 and expired == []


async def test_close_cancels_what_is_pending() -> None:
    expired: list[str] = []
    deadlines: Deadlines[str] = Deadlines(0.05, expired.append)
    deadlines.add("pending")
    deadlines.close()
    deadlines.close()
    await asyncio.sleep(0.1)
    assert expired == []


async def test_the_tick_is_a_twentieth_of_short_timeouts_and_at_most_a_tenth_of_a_second(
) -> None:
    assert Deadlines(0.2, print).tick == pytest.approx(0.01)
    assert Deadlines(3900.0, print).tick == 0.1
    with pytest.raises(ValueError, match="> 0"):
        Deadlines(0, print)
