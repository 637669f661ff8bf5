"""Claim latency of ready orders with 100,000 orders scheduled far in the future, against the
same store without them (the target: at most 1.2 times; the ready index must not walk orders
that are not due).

    .venv/bin/python bench/scheduled_backlog.py                        # SQLite and PostgreSQL
    .venv/bin/python bench/scheduled_backlog.py --stores sqlite --scheduled 100000 --claims 2000
    .venv/bin/python bench/scheduled_backlog.py --pg postgresql://user@host:5432/postgres

For each store two databases are filled: both with `--ready` ready orders, and one of them with
`--scheduled` orders too, due 30 days from now and accepted BEFORE the ready ones, in the same
tier and group (so their priority, start tags and seqs all come first: exactly where a claim
walking the queued orders by (priority, start tag, seq) would have to step over them). Then
single-slot claims are timed, alternating between the stores in rounds of 50 (each going
first in turn), so that all see the same machine noise; each claimed order is completed, as a
worker would. The claim includes the promotion of what came due (an index probe: nothing is
due here). Reported: the median and p99 claim latency of each, and their ratios (with /
without).

`--control` adds a third store, filled like the second and then with every scheduled order
put back in the ready index (its `waiting` flag cleared: the layout before the flag existed,
where the claim tested `available_at` while walking), to show what the flag saves.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import asyncpg
from e2e_throughput import fresh_database

from skipline.domain.scheduling import percentile
from skipline.store import open_store
from skipline.store.base import Store
from skipline.testing import make_new_order, submit_all

TARGET = 1.2
CLEAR_FLAG = "UPDATE orders SET waiting = {false} WHERE status = 'queued'"
ROUND = 50
LEASE = 60.0
MONTH = 30 * 86400.0 - 3600.0


async def fill(store: Store, ready: int, scheduled: int) -> None:
    """`scheduled` orders due in a month, then `ready` orders due now, one tier, one group."""
    later = time.time() + MONTH
    for start in range(0, scheduled, 10_000):
        count = min(10_000, scheduled - start)
        await submit_all(
            store, [make_new_order(not_before=later) for _ in range(count)], chunk=2000)
    await submit_all(store, [make_new_order() for _ in range(ready)], chunk=2000)


async def claim_once(store: Store) -> float:
    started = time.perf_counter()
    (lease,) = await store.claim("bench", 1, LEASE)
    took = time.perf_counter() - started
    await store.complete(lease.order.id, lease.token, None)
    return took


async def unflag(store: Store, url: str) -> None:
    """Put every waiting order back in the ready index (the control's layout)."""
    if url.startswith("sqlite"):
        writer = getattr(store, "writer")  # noqa: B009 - the SqliteStore's own writer thread
        await writer.run(lambda connection: connection.execute(CLEAR_FLAG.format(false=0)))
        return
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(CLEAR_FLAG.format(false="false"))
        await connection.execute("ANALYZE orders")
    finally:
        await connection.close()


async def measure(urls: list[str], ready: int, scheduled: int, claims: int
                  ) -> dict[str, list[float]]:
    """Claim latencies (seconds) without and with the scheduled backlog (and the control's),
    interleaved."""
    names = ["without", "with", "control"][:len(urls)]
    stores = [open_store(url) for url in urls]
    for store in stores:
        await store.open()
    try:
        for name, store, url in zip(names, stores, urls, strict=True):
            await fill(store, ready, 0 if name == "without" else scheduled)
            if name == "control":
                await unflag(store, url)
        for store in stores:  # warm up: plans prepared, pages cached
            for _ in range(ROUND):
                await claim_once(store)
        times: dict[str, list[float]] = {name: [] for name in names}
        pairs = list(zip(names, stores, strict=True))
        for round_number in range(claims // ROUND):
            shift = round_number % len(pairs)  # each store goes first in turn
            for name, store in pairs[shift:] + pairs[:shift]:
                times[name] += [await claim_once(store) for _ in range(ROUND)]
        return times
    finally:
        for store in stores:
            await store.close()


def report(store: str, times: dict[str, list[float]], scheduled: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    for name, values in times.items():
        for label, fraction in (("p50", 0.5), ("p99", 0.99)):
            value = percentile(values, fraction)
            assert value is not None
            figures[f"{name}_{label}_ms"] = round(1000 * value, 3)
    for label in ("p50", "p99"):
        figures[f"ratio_{label}"] = round(
            figures[f"with_{label}_ms"] / figures[f"without_{label}_ms"], 3)
        if "control" in times:
            figures[f"control_ratio_{label}"] = round(
                figures[f"control_{label}_ms"] / figures[f"without_{label}_ms"], 3)
    verdict = "OK" if figures["ratio_p50"] <= TARGET else "OVER TARGET"
    print(f"{store}: claim p50 {figures['without_p50_ms']:.3f} ms without, "
          f"{figures['with_p50_ms']:.3f} ms with {scheduled:,} scheduled "
          f"(ratio {figures['ratio_p50']:.3f}); p99 {figures['without_p99_ms']:.3f} / "
          f"{figures['with_p99_ms']:.3f} ms (ratio {figures['ratio_p99']:.3f})  {verdict}")
    if "control" in times:
        print(f"{store}: control (scheduled orders left in the ready index): p50 "
              f"{figures['control_p50_ms']:.3f} ms (ratio {figures['control_ratio_p50']:.3f}), "
              f"p99 {figures['control_p99_ms']:.3f} ms "
              f"(ratio {figures['control_ratio_p99']:.3f})")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgres"],
                        choices=["sqlite", "postgres"])
    parser.add_argument("--ready", type=int, default=3000)
    parser.add_argument("--scheduled", type=int, default=100_000)
    parser.add_argument("--claims", type=int, default=2000)
    parser.add_argument("--control", action="store_true",
                        help="also time a store whose scheduled orders are in the ready index")
    parser.add_argument("--pg", default=os.environ.get(
        "SKIPLINE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    if args.claims + 2 * ROUND > args.ready:
        parser.error("--ready must exceed --claims by two rounds (every claim takes one)")
    results = {}
    for store in args.stores:
        with ExitStack() as stack:
            count = 3 if args.control else 2
            if store == "sqlite":
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                urls = [f"sqlite:///{folder / f'store{n}.db'}" for n in range(count)]
            else:
                urls = [stack.enter_context(fresh_database(args.pg)) for _ in range(count)]
            times = asyncio.run(measure(urls, args.ready, args.scheduled, args.claims))
        results[store] = report(store, times, args.scheduled)
    print(json.dumps(results))
    sys.exit(0 if all(r["ratio_p50"] <= TARGET for r in results.values()) else 1)


if __name__ == "__main__":
    main()
