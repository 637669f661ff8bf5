"""The floor under the SQLite throughput target (docs/architecture.md): how fast can a *bare*
durable SQLite queue go on this machine, next to PgQueuer's drain measured in the same run?

    .venv/bin/python bench/sqlite_floor.py                    # 60,000 orders, batches 200 and 1000
    .venv/bin/python bench/sqlite_floor.py --batches 100,200,500 --no-pgqueuer

`bench/e2e_throughput.py` runs the same floor (kind `sqlite-floor`, batches of `--slots`) in
its own process, interleaved with skipline's runs: the SQLite target is a share of it.

"Bare" means what no product can do with less: one table with a single partial index, the
three durable writes every order needs (insert; claim, marking it running with a lease; the
completion), each batch of them in its own transaction with WAL and `synchronous=FULL`, in a
tight loop of one thread: no asyncio, no Order objects, no handler call, no idempotency,
owners, deadlines, statistics or migrations. skipline's SQLite store does all of that on top,
per order, in the same process. The ratio printed against PgQueuer is therefore an upper bound
of what any SQLite-backed queue written in Python could reach here with full durability.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from e2e_throughput import measure

INSERT = "INSERT INTO orders (id, priority, status, payload) VALUES (?, 1, 'queued', 'null')"
CLAIM = (
    "UPDATE orders SET status = 'running', lease = 'token' WHERE seq IN ("
    " SELECT seq FROM orders WHERE status = 'queued' ORDER BY priority, seq LIMIT ?)"
    " RETURNING seq"
)
COMPLETE = "UPDATE orders SET status = 'succeeded', lease = NULL WHERE seq = ? AND lease = 'token'"


class Steps:
    """Seconds spent in each named step of a loop (`with steps("claim"):`); timing costs two
    clock reads per step and batch, nothing per order."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


@contextmanager
def transaction(connection: sqlite3.Connection, steps: Steps) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, the commit timed as its own step."""
    connection.execute("BEGIN IMMEDIATE")
    yield
    with steps("commits"):
        connection.execute("COMMIT")


def bare_queue_rate(orders: int, batch: int, steps: Steps | None = None) -> float:
    """Orders per second through insert, claim and complete, `batch` orders per transaction."""
    steps = steps or Steps()
    with tempfile.TemporaryDirectory(prefix="skipline-floor-") as folder:
        connection = sqlite3.connect(Path(folder) / "floor.db", isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute(
            "CREATE TABLE orders (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
            " priority INTEGER NOT NULL, status TEXT NOT NULL, payload TEXT, lease TEXT)")
        connection.execute(
            "CREATE INDEX ready ON orders (priority, seq) WHERE status = 'queued'")
        ids = [os.urandom(16).hex() for _ in range(orders)]
        done = 0
        started = time.perf_counter()
        for first in range(0, orders, batch):
            with transaction(connection, steps), steps("insert"):
                connection.executemany(
                    INSERT, [(order_id,) for order_id in ids[first:first + batch]])
            with transaction(connection, steps), steps("claim"):
                claimed = connection.execute(CLAIM, (batch,)).fetchall()
            with transaction(connection, steps), steps("complete"):
                connection.executemany(COMPLETE, claimed)
            done += len(claimed)
        elapsed = time.perf_counter() - started
        connection.close()
    if done != orders:
        raise RuntimeError(f"{done} of {orders} orders went through")
    return orders / elapsed


def store_writes_rate(orders: int, batch: int, steps: Steps | None = None) -> float:
    """The same three writes made by skipline's SQLite store itself, alone: its own schema and
    statements (write_ops.submit_many, claim, complete_many, as the writer thread runs them,
    each batch in its own BEGIN IMMEDIATE ... COMMIT), in a tight loop of one thread: no
    asyncio, no event loop sharing the GIL, no handler; the orders are built beforehand. What
    the writer thread costs per order before anything else in the process is added."""
    from skipline.clock import SystemClock
    from skipline.config import Settings
    from skipline.domain.models import NewOrder
    from skipline.service import new_order_id
    from skipline.store.migrate import load_migrations
    from skipline.store.queries import load_queries
    from skipline.store.sqlite import write_ops
    from skipline.store.sqlite.schema import connect_writer

    steps = steps or Steps()
    clock, queries = SystemClock(), load_queries("sqlite")
    tier = Settings().tiers["regular"]  # what OrderService makes of an anonymous submission
    news = [(NewOrder(id=new_order_id(), tier=tier.name, priority=tier.priority,
                      max_wait=tier.max_wait, fifo=tier.fairness == "fifo"), "null")
            for _ in range(orders)]
    with tempfile.TemporaryDirectory(prefix="skipline-floor-") as folder:
        connection = connect_writer(str(Path(folder) / "store.db"), "full",
                                    load_migrations("sqlite"), queries, clock.now())
        done = 0
        started = time.perf_counter()
        for first in range(0, orders, batch):
            with transaction(connection, steps), steps("insert"):
                write_ops.submit_many(connection, news[first:first + batch], queries=queries,
                                      clock=clock)
            with transaction(connection, steps), steps("claim"):
                names, rows = write_ops.claim(connection, queries, clock, "w", batch, 30.0)
            order_id, token = names.index("id"), names.index("lease_token")
            with transaction(connection, steps), steps("complete"):
                held = write_ops.complete_many(
                    connection, [(row[order_id], row[token], "null") for row in rows],
                    queries=queries, clock=clock)
            done += sum(held)
        elapsed = time.perf_counter() - started
        connection.close()
    if done != orders:
        raise RuntimeError(f"{done} of {orders} orders went through")
    return orders / elapsed


def print_steps(orders: int, batch: int) -> None:
    """µs per order in each step (a step's statements; the three COMMITs together apart)."""
    print(f"µs per order, {orders:,} orders, batches of {batch}")
    for name, run in (("bare SQLite", bare_queue_rate), ("store's writes", store_writes_rate)):
        steps = Steps()
        rate = run(orders, batch, steps)
        parts = "  ".join(f"{step} {value / orders * 1e6:5.2f}"
                          for step, value in steps.seconds.items())
        print(f"  {name:<15} {1e6 / rate:6.2f} in all   {parts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=60_000)
    parser.add_argument("--batches", default="200,1000",
                        help="orders per transaction, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-pgqueuer", action="store_true")
    parser.add_argument("--pg", default=os.environ.get(
        "SKIPLINE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--one", type=int, metavar="BATCH",
                        help="one run of --orders with this batch size; prints JSON")
    parser.add_argument("--store-writes", action="store_true",
                        help="with --one: skipline's own writes alone (store_writes_rate)")
    parser.add_argument("--steps", type=int, metavar="BATCH",
                        help="where the time goes: the bare queue and the store's own writes, "
                             "µs per order in each step, batches of BATCH")
    options = parser.parse_args()
    if options.steps:
        print_steps(options.orders, options.steps)
        return
    if options.one:
        rate = (store_writes_rate if options.store_writes else bare_queue_rate)(
            options.orders, options.one)
        print(json.dumps({"per_second": rate}))
        return
    batches = [int(size) for size in options.batches.split(",")]
    rates: dict[str, list[float]] = {f"bare SQLite, batches of {b}": [] for b in batches}
    if not options.no_pgqueuer:
        rates["pgqueuer drain"] = []
    pgqueuer_options = argparse.Namespace(pg=options.pg, orders=20_000)
    for _ in range(options.rounds):
        for size in batches:
            rates[f"bare SQLite, batches of {size}"].append(
                bare_queue_rate(options.orders, size))
        if not options.no_pgqueuer:
            rates["pgqueuer drain"].append(measure("pgqueuer", pgqueuer_options)["per_second"])
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print("orders/s (median of rounds)")
    for name, median in medians.items():
        print(f"  {name:<28} {median:>9,.0f}")
    baseline = medians.get("pgqueuer drain")
    if baseline:
        print("ratio to PgQueuer's drain")
        for name, median in medians.items():
            if name.startswith("bare"):
                print(f"  {name:<28} {median / baseline:5.1f}x")


if __name__ == "__main__":
    main()
