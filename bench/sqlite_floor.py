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
from pathlib import Path

from e2e_throughput import measure

INSERT = "INSERT INTO orders (id, priority, status, payload) VALUES (?, 1, 'queued', 'null')"
CLAIM = (
    "UPDATE orders SET status = 'running', lease = 'token' WHERE seq IN ("
    " SELECT seq FROM orders WHERE status = 'queued' ORDER BY priority, seq LIMIT ?)"
    " RETURNING seq"
)
COMPLETE = "UPDATE orders SET status = 'succeeded', lease = NULL WHERE seq = ? AND lease = 'token'"


def bare_queue_rate(orders: int, batch: int) -> float:
    """Orders per second through insert, claim and complete, `batch` orders per transaction."""
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
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(INSERT, [(order_id,) for order_id in ids[first:first + batch]])
            connection.execute("COMMIT")
            connection.execute("BEGIN IMMEDIATE")
            claimed = connection.execute(CLAIM, (batch,)).fetchall()
            connection.execute("COMMIT")
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(COMPLETE, claimed)
            connection.execute("COMMIT")
            done += len(claimed)
        elapsed = time.perf_counter() - started
        connection.close()
    if done != orders:
        raise RuntimeError(f"{done} of {orders} orders went through")
    return orders / elapsed


def store_writes_rate(orders: int, batch: int) -> float:
    """The same three writes made by skipline's SQLite store itself, alone: its own schema and
    statements (write_ops.submit_many, claim, complete_many, as the writer thread runs them,
    each batch in its own BEGIN IMMEDIATE ... COMMIT), in a tight loop of one thread: no
    asyncio, no event loop sharing the GIL, no handler; the orders are built beforehand. What
    the writer thread costs per order before anything else in the process is added."""
    from skipline.clock import SystemClock
    from skipline.store.migrate import load_migrations
    from skipline.store.queries import load_queries
    from skipline.store.sqlite import write_ops
    from skipline.store.sqlite.schema import connect_writer
    from skipline.testing import make_new_order

    clock, queries = SystemClock(), load_queries("sqlite")
    news = [(make_new_order(), "null") for _ in range(orders)]
    with tempfile.TemporaryDirectory(prefix="skipline-floor-") as folder:
        connection = connect_writer(str(Path(folder) / "store.db"), "full",
                                    load_migrations("sqlite"), queries, clock.now())
        done = 0
        started = time.perf_counter()
        for first in range(0, orders, batch):
            connection.execute("BEGIN IMMEDIATE")
            write_ops.submit_many(connection, news[first:first + batch], queries=queries,
                                  clock=clock)
            connection.execute("COMMIT")
            connection.execute("BEGIN IMMEDIATE")
            names, rows = write_ops.claim(connection, queries, clock, "w", batch, 30.0)
            connection.execute("COMMIT")
            order_id, token = names.index("id"), names.index("lease_token")
            connection.execute("BEGIN IMMEDIATE")
            held = write_ops.complete_many(
                connection, [(row[order_id], row[token], "null") for row in rows],
                queries=queries, clock=clock)
            connection.execute("COMMIT")
            done += sum(held)
        elapsed = time.perf_counter() - started
        connection.close()
    if done != orders:
        raise RuntimeError(f"{done} of {orders} orders went through")
    return orders / elapsed


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
    options = parser.parse_args()
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
