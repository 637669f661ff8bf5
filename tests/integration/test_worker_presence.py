"""A pool's presence in the worker registry on a real store: it signs in again when its row is
gone (reaped after an outage longer than a lease), survives a store outage without ending,
and a drain that could not reach the store leaves the row to expire."""

from __future__ import annotations

import asyncio
from pathlib import Path

from skipline.clock import SystemClock
from skipline.config import Settings
from skipline.store.sqlite import SqliteStore
from skipline.worker.presence import Presence
from tests.integration.test_worker import FlakyStore

LEASE = 0.3


async def until_listed(store: SqliteStore, busy: int) -> None:
    for _ in range(40):
        if [worker.slots_busy for worker in await store.list_workers()] == [busy]:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"never listed with {busy} busy: {await store.list_workers()}")


async def test_a_pool_whose_row_was_reaped_signs_in_again(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "p.db"), SystemClock())
    await store.open()
    busy = 0
    presence = Presence(store, Settings(lease_seconds=LEASE, workers=2), "w1", ("default",),
                        lambda: busy)
    try:
        presence.start()
        await until_listed(store, 0)
        assert await store.remove_worker("w1") is True

        busy = 2
        await until_listed(store, 0)  # signed in again, as new
        await until_listed(store, 2)  # and beating
    finally:
        await presence.stop()
        assert await store.list_workers() == []
        await store.close()


async def test_an_outage_neither_ends_the_beats_nor_blocks_the_stop(tmp_path: Path) -> None:
    inner = SqliteStore(str(tmp_path / "p.db"), SystemClock())
    await inner.open()
    flaky = FlakyStore(inner)  # the methods named in flaky.down raise StoreUnavailable
    presence = Presence(flaky, Settings(lease_seconds=LEASE), "w1", ("default",), lambda: 1)
    try:
        presence.start()
        await until_listed(inner, 1)
        flaky.down = {"beat_worker", "register_worker", "remove_worker"}
        await asyncio.sleep(2 * LEASE)
        assert await inner.list_workers() == [], "no beat: the row expired"

        flaky.down = set()
        await until_listed(inner, 1)
        flaky.down = {"remove_worker"}
        await asyncio.wait_for(presence.stop(), 2.0)
        assert await inner.remove_worker("w1") is True, "the row is left to expire"
    finally:
        await presence.stop()
        await inner.close()
