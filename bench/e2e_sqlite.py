"""Worker throughput on the SQLite store: no-op orders drained per second by one WorkerPool.

    .venv/bin/python bench/e2e_sqlite.py              # 3 rounds, 50,000 orders, 200 slots
    .venv/bin/python bench/e2e_sqlite.py --orders 20000 --slots 50 --rounds 1

Each round pre-fills a fresh SQLite file (synchronous=FULL) with `--orders` queued orders
(untimed), then starts a WorkerPool with `--slots` slots and a handler that does nothing, and
times from the pool's start until the store reports every order succeeded (and the process's
CPU time over that span, a steadier figure on a busy machine). The pool claims only
as many orders as it has free slots (no prefetch), as in production. Each round runs in its own
process, with the garbage-collector settings of a `skipline worker` process, so rounds do not
share caches or garbage. Prints orders/s per round and the median.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from skipline.clock import SystemClock
from skipline.config import Settings
from skipline.domain.models import NewOrder, Order
from skipline.runtime import Workers, tune_garbage_collector
from skipline.store.sqlite import SqliteStore

FILL_SUBMITTERS = 256
POLL_SECONDS = 0.002


async def fill(store: SqliteStore, orders: int) -> None:
    """Queue `orders` no-op orders through the store's own submit (group-committed)."""
    numbers = iter(range(orders))

    async def submitter() -> None:
        for n in numbers:
            await store.submit(NewOrder(id=str(uuid.uuid4()), tier="regular", priority=1,
                                        payload={"n": n}, max_wait=300.0))

    await asyncio.gather(*(submitter() for _ in range(FILL_SUBMITTERS)))


async def succeeded(store: SqliteStore) -> int:
    stats = await store.stats()
    return sum(counts.succeeded for counts in stats.counts.values())


async def drain(path: str, orders: int, slots: int) -> dict[str, float]:
    """Seconds for a WorkerPool of `slots` no-op slots to finish `orders` queued orders."""
    store = SqliteStore(path, SystemClock(), "full")
    await store.open()
    await fill(store, orders)
    handled = 0

    async def noop(order: Order) -> None:
        nonlocal handled
        handled += 1

    workers = Workers(store, Settings(db=f"sqlite:///{path}", workers=slots), noop)
    batches = store.committed_batches
    started, cpu_started = time.perf_counter(), time.process_time()
    await workers.start()
    # The store's count of succeeded orders is what counts, and nothing signals it: poll it.
    while handled < orders or await succeeded(store) < orders:  # noqa: ASYNC110
        await asyncio.sleep(POLL_SECONDS)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    transactions = store.committed_batches - batches
    await workers.stop()
    await store.close()
    return {"per_second": orders / elapsed, "seconds": elapsed,
            "cpu_us_per_order": cpu / orders * 1e6,
            "orders_per_transaction": 2 * orders / max(1, transactions)}


def one_round(options: argparse.Namespace) -> dict[str, float]:
    """A round in a fresh process, on a fresh file."""
    with tempfile.TemporaryDirectory(prefix="skipline-e2e-") as folder:
        argv = [sys.executable, __file__, "--one", str(Path(folder) / "bench.db"),
                "--orders", str(options.orders), "--slots", str(options.slots)]
        result = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600)
    parsed: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--slots", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", metavar="PATH", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.one:
        tune_garbage_collector()  # as `skipline worker` and `skipline serve` do
        print(json.dumps(asyncio.run(drain(options.one, options.orders, options.slots))))
        return
    print(f"{options.orders:,} queued no-op orders, WorkerPool with {options.slots} slots, "
          "SQLite synchronous=FULL")
    rates = []
    for round_number in range(1, options.rounds + 1):
        result = one_round(options)
        rates.append(result["per_second"])
        print(f"round {round_number}: {result['per_second']:>9,.0f} orders/s  "
              f"({result['seconds']:.2f} s; {result['cpu_us_per_order']:.1f} us of CPU per "
              f"order, both threads; {result['orders_per_transaction']:.0f} writes per "
              "transaction)", flush=True)
    print(f"median: {statistics.median(rates):,.0f} orders/s")


if __name__ == "__main__":
    main()
