"""Light customers' submit-to-start wait against a real `skipline serve`, while one customer
of the same tier holds 100,000 queued orders: fair share (`fairness = "customers"`) against
plain FIFO (`fairness = "fifo"`), each beside a run where that customer holds no backlog.

    .venv/bin/python bench/fairness_backlog.py [--backlog 100000] [--light 4] [--seconds 60]
        [--workers 8] [--job-seconds 0.2] [--grace 10]

Four runs, each on a fresh SQLite file and its own `skipline serve` on 127.0.0.1, in the
order customers/none, customers/backlog, fifo/none, fifo/backlog. A heavy customer (its own
API key) first queues its backlog (through the store, as fast as group commit allows; "none"
is four orders per worker slot, so the slots are busy from the start), then keeps it at that
size over HTTP (every 0.2 s it posts what the slots took meanwhile), so all `--workers` slots
stay busy with its jobs and its backlog neither drains nor grows. Meanwhile `--light` other
customers (a key each) post one order per second each for `--seconds`. A light order's wait
is `started_at - created_at` as the server recorded them: the wait for a slot to free (about
job_seconds / workers) plus the wait for its turn, which is what fair share changes. The
regular tier's `max_wait` is longer than the run, so no order turns overdue. Light orders
still waiting `--grace` seconds after the last one was posted are counted as not started,
their wait so far a lower bound (FIFO behind 100,000 orders would take 40 minutes). The
target: with fair share, light p99 with the backlog <= 1.2 x light p99 without it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from vip_latency_backlog import (
    PRELOAD_BATCH,
    Paced,
    free_port,
    job_durations,
    post_order,
    start_server,
    wait_ready,
)

from skipline.config import Settings, load_tiers
from skipline.domain.models import NewOrder
from skipline.domain.scheduling import percentile
from skipline.service import OrderService
from skipline.store import open_store

CONFIG = """
[tiers.vip]
priority = 0

[tiers.regular]
priority = 1
max_wait = 86400
fairness = "{mode}"
"""
TARGET = 1.2
TOP_UP_EVERY = 0.2
TOP_UP_BATCH = 200


@dataclass(frozen=True)
class Plan:
    backlog: int = 100_000
    light: int = 4
    seconds: float = 60.0
    workers: int = 8
    job_seconds: float = 0.2
    grace: float = 10.0
    seed: int = 1

    @property
    def no_backlog(self) -> int:
        return 4 * self.workers


@dataclass
class RunResult:
    mode: str
    backlog: int
    waits: list[float]
    """Light orders' waits; for those not started, the time they had waited so far."""
    unstarted: int
    queued_after: int

    def p(self, fraction: float) -> float:
        return percentile(self.waits, fraction) or 0.0


async def preload(db: str, config: Path, plan: Plan, backlog: int, mode: str,
                  durations: Iterator[float]) -> dict[str, str]:
    """Queue the heavy customer's backlog; returns the API keys by customer name."""
    settings = Settings(db=db, tiers=load_tiers(config))
    store = open_store(db)
    await store.open()
    try:
        service = OrderService(store, settings)
        keys = {"heavy": await service.add_key("heavy", "regular")}
        for n in range(plan.light):
            keys[f"light-{n + 1}"] = await service.add_key(f"light-{n + 1}", "regular")
        regular = settings.tiers["regular"]
        for start in range(0, backlog, PRELOAD_BATCH):
            await asyncio.gather(*(
                store.submit(NewOrder(
                    id=str(uuid.uuid4()), tier="regular", priority=regular.priority,
                    duration=next(durations), max_wait=regular.max_wait, owner="heavy",
                    fifo=mode == "fifo",
                ))
                for _ in range(min(PRELOAD_BATCH, backlog - start))
            ))
        return keys
    finally:
        await store.close()


async def fetch_order(session: aiohttp.ClientSession, base: str, key: str,
                      order_id: str) -> dict[str, Any]:
    async with session.get(f"{base}/orders/{order_id}",
                           headers={"Authorization": f"Bearer {key}"}) as response:
        order: dict[str, Any] = await response.json()
        return order


async def light_waits(session: aiohttp.ClientSession, base: str,
                      posted: list[tuple[str, str]]) -> tuple[list[float], int]:
    """Each light order's wait (started or, if not yet, so far) and how many never started."""
    waits, unstarted = [], 0
    now = datetime.now(UTC)
    for key, order_id in posted:
        order = await fetch_order(session, base, key, order_id)
        created = datetime.fromisoformat(order["created_at"])
        if order["started_at"]:
            waits.append((datetime.fromisoformat(order["started_at"]) - created).total_seconds())
        else:
            unstarted += 1
            waits.append((now - created).total_seconds())
    return waits, unstarted


async def queued_regular(session: aiohttp.ClientSession, base: str) -> int:
    async with session.get(f"{base}/stats") as response:
        stats: dict[str, Any] = await response.json()
    return int(stats["tiers"]["regular"]["queued"])


async def measure(plan: Plan, base: str, keys: dict[str, str], durations: Iterator[float],
                  target: int) -> tuple[list[float], int, int]:
    async with aiohttp.ClientSession() as session:
        await wait_ready(session, base)
        posted: list[tuple[str, str]] = []

        async def heavy_order() -> None:
            await post_order(session, base, next(durations), keys["heavy"])

        async def light_order(name: str) -> None:
            key = keys[name]
            posted.append((key, await post_order(session, base, next(durations), key)))

        feeding = asyncio.ensure_future(keep_topped_up(session, base, target, heavy_order))
        try:
            lights = [Paced(1.0, lambda name=f"light-{n + 1}": light_order(name))
                      for n in range(plan.light)]
            count = int(plan.seconds)
            await asyncio.gather(*(paced.run(count) for paced in lights))
            await asyncio.gather(*(paced.finish() for paced in lights))
            await asyncio.sleep(plan.grace)
            waits, unstarted = await light_waits(session, base, posted)
            queued = await queued_regular(session, base)
        finally:
            feeding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeding
    return waits, unstarted, queued


async def keep_topped_up(session: aiohttp.ClientSession, base: str, target: int,
                         post: Callable[[], Awaitable[None]]) -> None:
    """Keep the regular tier's queued orders at `target`: every TOP_UP_EVERY seconds, post
    what the workers took meanwhile (at most TOP_UP_BATCH at once)."""
    while True:
        missing = target - await queued_regular(session, base)
        if missing > 0:
            await asyncio.gather(*(post() for _ in range(min(missing, TOP_UP_BATCH))))
        await asyncio.sleep(TOP_UP_EVERY)


async def run_case(plan: Plan, mode: str, backlog: int) -> RunResult:
    folder = Path(tempfile.mkdtemp(prefix="skipline-fairness-"))
    try:
        config = folder / "skipline.toml"
        config.write_text(CONFIG.format(mode=mode), encoding="utf-8")
        db = f"sqlite:///{folder / 'bench.db'}"
        began = time.monotonic()
        durations = job_durations(plan.job_seconds, plan.seed)
        keys = await preload(db, config, plan, backlog, mode, durations)
        print(f"  {mode}: preloaded {backlog} orders of the heavy customer in "
              f"{time.monotonic() - began:.1f}s")
        port = free_port()
        server = await start_server(db, config, port, plan.workers)
        try:
            waits, unstarted, queued = await measure(
                plan, f"http://127.0.0.1:{port}", keys, durations, backlog)
        finally:
            server.send_signal(signal.SIGTERM)
            await asyncio.wait_for(server.wait(), 60)
        return RunResult(mode, backlog, waits, unstarted, queued)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def describe(result: RunResult) -> str:
    bound = ">=" if result.unstarted else "  "
    started = len(result.waits) - result.unstarted
    return (f"{result.mode:>9} {result.backlog:>8} {result.queued_after:>13} "
            f"{result.p(0.5) * 1000:>9.1f}ms {bound}{result.p(0.99) * 1000:>9.1f}ms "
            f"{bound}{max(result.waits) * 1000:>9.1f}ms {started:>5}/{len(result.waits)}")


def report(plan: Plan, results: dict[tuple[str, int], RunResult]) -> bool:
    print(f"\n{plan.workers} workers kept busy by a heavy customer's jobs of "
          f"{plan.job_seconds:g}s +/- 50%; {plan.light} light customers post 1 order/s each "
          f"for {plan.seconds:g}s; wait = started_at - created_at")
    print(f"{'fairness':>9} {'backlog':>8} {'queued after':>13} {'light p50':>11} "
          f"{'light p99':>13} {'max':>13} {'started':>9}")
    for result in results.values():
        print(describe(result))
    fair = results[("customers", plan.backlog)].p(0.99)
    calm = results[("customers", plan.no_backlog)].p(0.99)
    ratio = fair / calm if calm > 0 else float("inf")
    ok = ratio <= TARGET
    print(f"customers: light p99 with {plan.backlog} queued / without: {ratio:.2f} "
          f"(target <= {TARGET}): {'OK' if ok else 'MISSED'}")
    fifo = results[("fifo", plan.backlog)]
    print(f"fifo: light p99 with {plan.backlog} queued "
          f"{'>= ' if fifo.unstarted else ''}{fifo.p(0.99):.1f}s, "
          f"{fifo.unstarted} of {len(fifo.waits)} light orders not started by the end")
    return ok


def parse_args(argv: list[str] | None = None) -> Plan:
    defaults = Plan()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=defaults.backlog)
    parser.add_argument("--light", type=int, default=defaults.light)
    parser.add_argument("--seconds", type=float, default=defaults.seconds)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--job-seconds", type=float, default=defaults.job_seconds)
    parser.add_argument("--grace", type=float, default=defaults.grace)
    args = parser.parse_args(argv)
    return Plan(args.backlog, args.light, args.seconds, args.workers, args.job_seconds,
                args.grace)


async def main_async(plan: Plan) -> int:
    results: dict[tuple[str, int], RunResult] = {}
    for mode in ("customers", "fifo"):
        for backlog in (plan.no_backlog, plan.backlog):
            print(f"{mode}, backlog {backlog}:")
            results[(mode, backlog)] = await run_case(plan, mode, backlog)
    return 0 if report(plan, results) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(asyncio.run(main_async(parse_args())))
