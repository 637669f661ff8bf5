"""What one reading of the dashboard's queue health costs the store, against the reading
/stats already makes, on the same store with the same backlog.

    .venv/bin/python bench/queue_health.py [--db sqlite|postgresql://127.0.0.1/test]
                                           [--queued 1000,10000,100000] [--repeat 20]

For each backlog (queued orders, half regular and half VIP, from 50 customers, plus 1,000
finished orders) it times `Store.stats()` (the baseline: what /stats and /metrics read at most
once a second) and `Store.queue_health()` (what /stats/queues and the history sampler read,
also at most once a second), median of `--repeat` readings each, and prints the ratio, and
the longest the event loop stood still during each kind of reading (what every other request
of the process waited meanwhile). On
PostgreSQL it works in a database of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from skipline.domain.models import NewOrder
from skipline.domain.reporting import OUTCOME_WINDOW
from skipline.store import open_store
from skipline.store.base import Store
from skipline.testing import submit_all

FINISHED = 1000


def new_order(n: int) -> NewOrder:
    vip = n % 2 == 0
    return NewOrder(id=str(uuid.uuid4()), tier="vip" if vip else "regular",
                    priority=0 if vip else 1, payload={"n": n}, owner="shop",
                    customer=f"c{n % 50}", max_wait=300.0)


async def fill(store: Store, queued: int, already: int) -> None:
    await submit_all(store, [new_order(n) for n in range(already, queued)], chunk=500)


async def timed(read: Callable[[], Awaitable[object]], repeat: int) -> tuple[float, float]:
    """(median milliseconds of a reading, the longest the event loop stood still meanwhile):
    a ticker sleeping 1 ms at a time measures how late it wakes while the readings run."""
    times: list[float] = []
    stall = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal stall
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            stall = max(stall, time.perf_counter() - before - 0.001)

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    for _ in range(repeat):
        started = time.perf_counter()
        await read()
        times.append((time.perf_counter() - started) * 1000)
    done.set()
    await ticking
    return statistics.median(times), stall * 1000


async def finish_some(store: Store) -> None:
    await submit_all(store, [new_order(n) for n in range(FINISHED)], chunk=500)
    while leases := await store.claim("bench", 500, 30.0):
        for lease in leases:
            await store.complete(lease.order.id, lease.token, None)


async def run(url: str, backlogs: list[int], repeat: int) -> None:
    store = open_store(url)
    await store.open()
    try:
        await finish_some(store)
        print(f"{'queued':>8} {'stats() ms':>11} {'stall ms':>9} {'queue_health() ms':>18} "
              f"{'stall ms':>9} {'ratio':>6}")
        have = 0
        for queued in backlogs:
            await fill(store, queued, have)
            have = queued
            baseline, baseline_stall = await timed(store.stats, repeat)
            health, stall = await timed(lambda: store.queue_health(OUTCOME_WINDOW), repeat)
            print(f"{queued:>8} {baseline:>11.2f} {baseline_stall:>9.1f} {health:>18.2f} "
                  f"{stall:>9.1f} {health / baseline:>6.2f}")
    finally:
        await store.close()


async def main(db: str, backlogs: list[int], repeat: int) -> None:
    if db == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            await run(f"sqlite:///{Path(folder) / 'bench.db'}", backlogs, repeat)
        return
    import asyncpg  # the postgres extra; only this branch needs it

    name = "bench_" + uuid.uuid4().hex[:8]
    admin = await asyncpg.connect(db)
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        await run(db.rsplit("/", 1)[0] + "/" + name, backlogs, repeat)
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--queued", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=20)
    arguments = parser.parse_args()
    sizes = [int(size) for size in arguments.queued.split(",")]
    asyncio.run(main(arguments.db, sizes, arguments.repeat))
