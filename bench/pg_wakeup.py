"""Wake-up latency on PostgreSQL: how soon an idle `skipline worker` process starts an order
committed by another process (the target in docs/architecture.md: within 50 ms, woken by
LISTEN/NOTIFY; polling is only the fallback for lost notifications).

    .venv/bin/python bench/pg_wakeup.py                       # 200 orders, 2 idle workers
    .venv/bin/python bench/pg_wakeup.py --orders 500 --workers 4
    .venv/bin/python bench/pg_wakeup.py --pg postgresql://user@host:5432/postgres

Real processes on a fresh database (dropped afterwards): `--workers` idle `skipline worker`
processes (built-in `simulate` handler, duration 0), and this process submitting one order at
a time through a PostgresStore, each after a random pause of 20-80 ms so that every worker is
asleep waiting for work when it arrives. The delay is read from the order itself, on the
database's clock, so no two clocks are compared: `started_at - created_at`, from the start of
the submitting transaction (before its commit) to the start of the claim that took the order.
It therefore includes the commit itself, the NOTIFY's delivery, the worker waking and sending
its claim: an upper bound of commit-to-start.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time

from e2e_throughput import fresh_database

from skipline.domain.models import Order
from skipline.store.postgres import PostgresStore
from skipline.testing import make_new_order

TARGET_MS = 50.0
STARTUP_SECONDS = 60.0
ORDER_SECONDS = 10.0


async def measure(url: str, orders: int, workers: int) -> list[float]:
    """Milliseconds from submission to start for `orders` orders, one at a time."""
    argv = [sys.executable, "-m", "skipline", "worker", "--db", url, "--concurrency", "1",
            "--log-level", "warning"]
    processes = [await asyncio.create_subprocess_exec(*argv) for _ in range(workers)]
    store = PostgresStore(url)
    await store.open()
    delays: list[float] = []
    try:
        await run_one(store, STARTUP_SECONDS)  # every worker has started once it ran
        await asyncio.sleep(1.0)
        for _ in range(orders):
            await asyncio.sleep(random.uniform(0.02, 0.08))
            order = await run_one(store, ORDER_SECONDS)
            if order.status != "succeeded" or order.started_at is None:
                raise RuntimeError(f"order {order.id} ended {order.status}, not succeeded")
            delays.append((order.started_at - order.created_at) * 1000)
    finally:
        await store.close()
        for process in processes:
            process.terminate()
        await asyncio.gather(*(process.wait() for process in processes))
    return delays


async def run_one(store: PostgresStore, seconds: float) -> Order:
    """Submit one order and wait until it is final; the order as the store then has it."""
    new = make_new_order()
    await store.submit(new)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        order = await store.get(new.id)
        if order is not None and order.status.is_final:
            return order
        await asyncio.sleep(0.005)
    raise RuntimeError(f"order {new.id} not final after {seconds} s")


def report(delays: list[float], workers: int) -> None:
    ordered = sorted(delays)
    p95 = ordered[max(0, int(0.95 * len(ordered)) - 1)]
    median = statistics.median(ordered)
    print(f"{len(ordered)} orders, {workers} idle worker process(es); "
          "submission -> start (database clock)")
    print(f"  median {median:.1f} ms   p95 {p95:.1f} ms   max {ordered[-1]:.1f} ms")
    verdict = "meets" if p95 < TARGET_MS else "misses"
    print(f"  p95 {verdict} the {TARGET_MS:g} ms target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pg", default=os.environ.get(
        "SKIPLINE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server (a fresh database is created on it and dropped)")
    options = parser.parse_args()
    with fresh_database(options.pg) as url:
        delays = asyncio.run(measure(url, options.orders, options.workers))
    report(delays, options.workers)


if __name__ == "__main__":
    main()
