"""VIP submit-to-start latency against a real `skipline serve`, with a small and a huge backlog.

    .venv/bin/python bench/vip_latency_backlog.py [--backlogs 1000 100000] [--vips 300]
        [--vip-rate 5] [--workers 8] [--job-seconds 0.2]

For each backlog size: a fresh SQLite file is preloaded with that many queued regular orders
(through the store, as fast as group commit allows), `skipline serve` is started on it with
`--workers` slots, a background client keeps the backlog topped up over HTTP at the workers'
drain rate (so it stays at its size while we measure), and `--vips` VIP orders (duration 0)
are posted at `--vip-rate` per second with a VIP API key. Each VIP's wait is its
`started_at - created_at` as the server recorded them: the time from its commit to a worker
slot taking it. All slots are always busy with regular jobs of `--job-seconds` +/- 50 %, so a
VIP waits for the next slot to free (about job_seconds / workers on average) plus the claim
itself; only the second part could grow with the backlog, which is what the ratio shows.

Regular orders get a `max_wait` far longer than the run, so none turns overdue: every claim
during the run is decided by priority alone. The target (docs/architecture.md) is
p99(100k) / p99(1k) <= 1.2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from skipline.config import Settings, load_tiers
from skipline.domain.models import NewOrder
from skipline.domain.scheduling import percentile
from skipline.service import OrderService
from skipline.store import open_store
from skipline.testing import free_port

CONFIG = """
[tiers.vip]
priority = 0

[tiers.regular]
priority = 1
max_wait = 86400
"""
PRELOAD_BATCH = 2000
"""Concurrent submissions per gather while preloading (they share commits)."""
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Plan:
    backlogs: tuple[int, ...] = (1000, 100_000)
    vips: int = 300
    vip_rate: float = 5.0
    workers: int = 8
    job_seconds: float = 0.2
    """Mean regular job; each lasts uniform(0.5, 1.5) times it, so slots free at staggered
    times (equal jobs started together would keep every slot in lockstep)."""
    seed: int = 1

    @property
    def drain_rate(self) -> float:
        return self.workers / self.job_seconds


@dataclass
class CaseResult:
    backlog: int
    waits: list[float]
    queued_before: int
    queued_after: int

    def p(self, fraction: float) -> float:
        return percentile(self.waits, fraction) or 0.0


def job_durations(mean: float, seed: int) -> Iterator[float]:
    rng = random.Random(seed)
    while True:
        yield round(mean * rng.uniform(0.5, 1.5), 4)


async def preload(db: str, config: Path, backlog: int, durations: Iterator[float]) -> str:
    """Queue `backlog` regular orders and create a VIP key; returns the key's secret."""
    settings = Settings(db=db, tiers=load_tiers(config))
    store = open_store(db)
    await store.open()
    try:
        regular = settings.tiers["regular"]
        for start in range(0, backlog, PRELOAD_BATCH):
            count = min(PRELOAD_BATCH, backlog - start)
            await asyncio.gather(*(
                store.submit(NewOrder(
                    id=str(uuid.uuid4()), tier="regular", priority=regular.priority,
                    duration=next(durations), max_wait=regular.max_wait,
                ))
                for _ in range(count)
            ))
        return await OrderService(store, settings).add_key("bench-vip", "vip")
    finally:
        await store.close()


async def start_server(
    db: str, config: Path, port: int, workers: int,
) -> asyncio.subprocess.Process:
    command = [
        str(Path(sys.executable).with_name("skipline")), "serve", "--db", db,
        "--config", str(config), "--port", str(port), "--workers", str(workers),
        "--log-level", "warning",
    ]
    return await asyncio.create_subprocess_exec(*command)


async def wait_ready(session: aiohttp.ClientSession, base: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{base}/readyz") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise RuntimeError("skipline serve did not become ready")


async def queued_regular(session: aiohttp.ClientSession, base: str) -> int:
    async with session.get(f"{base}/stats") as response:
        stats: dict[str, Any] = await response.json()
    return int(stats["tiers"]["regular"]["queued"])


async def post_order(
    session: aiohttp.ClientSession, base: str, duration: float, key: str | None = None,
) -> str:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with session.post(f"{base}/orders", json={"duration": duration},
                            headers=headers) as response:
        body: dict[str, Any] = await response.json()
        if response.status != 202:
            raise RuntimeError(f"POST /orders answered {response.status}: {body}")
        return str(body["id"])


class Paced:
    """Runs `action()` at `rate` per second on a fixed schedule (not after each other: a slow
    answer does not delay the next call), keeping the calls so they can be awaited."""

    def __init__(self, rate: float, action: Callable[[], Awaitable[Any]]) -> None:
        self.rate = rate
        self.action = action
        self.calls: set[asyncio.Task[Any]] = set()

    async def run(self, count: int | None = None) -> None:
        started, sent = time.monotonic(), 0
        while count is None or sent < count:
            delay = started + sent / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.calls.add(asyncio.ensure_future(self.action()))
            sent += 1

    async def finish(self) -> None:
        """Wait for every call made; the first error is raised."""
        await asyncio.gather(*self.calls)

    async def abandon(self) -> None:
        for call in self.calls:
            call.cancel()
        await asyncio.gather(*self.calls, return_exceptions=True)


async def vip_waits(
    session: aiohttp.ClientSession, base: str, key: str, ids: list[str],
) -> list[float]:
    """Each VIP's started_at - created_at, once all have started."""
    waits: list[float] = []
    for order_id in ids:
        for _ in range(600):
            async with session.get(f"{base}/orders/{order_id}",
                                   headers={"Authorization": f"Bearer {key}"}) as response:
                order: dict[str, Any] = await response.json()
            if order["started_at"]:
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"VIP order {order_id} never started")
        created = datetime.fromisoformat(order["created_at"])
        started = datetime.fromisoformat(order["started_at"])
        waits.append((started - created).total_seconds())
    return waits


async def measure(
    plan: Plan, base: str, key: str, backlog: int, durations: Iterator[float],
) -> CaseResult:
    async with aiohttp.ClientSession() as session:
        await wait_ready(session, base)
        before = await queued_regular(session, base)
        ids: list[str] = []

        async def one_vip() -> None:
            ids.append(await post_order(session, base, 0.0, key))

        async def one_regular() -> None:
            await post_order(session, base, next(durations))

        topup = Paced(plan.drain_rate, one_regular)
        feeding = asyncio.ensure_future(topup.run())
        try:
            vips = Paced(plan.vip_rate, one_vip)
            await vips.run(plan.vips)
            await vips.finish()
            waits = await vip_waits(session, base, key, ids)
            after = await queued_regular(session, base)
        finally:
            feeding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeding
            await topup.abandon()
    return CaseResult(backlog, waits, before, after)


async def run_case(plan: Plan, backlog: int) -> CaseResult:
    folder = Path(tempfile.mkdtemp(prefix="skipline-backlog-"))
    try:
        config = folder / "skipline.toml"
        config.write_text(CONFIG, encoding="utf-8")
        db = f"sqlite:///{folder / 'bench.db'}"
        began = time.monotonic()
        durations = job_durations(plan.job_seconds, plan.seed)
        key = await preload(db, config, backlog, durations)
        print(f"  preloaded {backlog} regular orders in {time.monotonic() - began:.1f}s")
        port = free_port()
        server = await start_server(db, config, port, plan.workers)
        try:
            return await measure(plan, f"http://127.0.0.1:{port}", key, backlog, durations)
        finally:
            server.send_signal(signal.SIGTERM)
            await asyncio.wait_for(server.wait(), 60)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def report(plan: Plan, results: list[CaseResult]) -> None:
    print(f"\n{plan.workers} workers, regular jobs {plan.job_seconds:g}s +/- 50% (all busy), "
          f"{plan.vips} VIP orders at {plan.vip_rate:g}/s; wait = started_at - created_at")
    print(f"{'backlog':>8} {'queued before/after':>20} {'VIP p50':>9} {'VIP p99':>9} {'max':>8}")
    for result in results:
        queued = f"{result.queued_before}/{result.queued_after}"
        print(f"{result.backlog:>8} {queued:>20} {result.p(0.5) * 1000:>7.1f}ms "
              f"{result.p(0.99) * 1000:>7.1f}ms {max(result.waits) * 1000:>6.1f}ms")
    if len(results) >= 2 and results[0].p(0.99) > 0:
        ratio = results[-1].p(0.99) / results[0].p(0.99)
        print(f"p99 ratio {results[-1].backlog} / {results[0].backlog} backlog: {ratio:.2f} "
              f"(target <= 1.2)")


def parse_args(argv: list[str] | None = None) -> Plan:
    defaults = Plan()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlogs", type=int, nargs="+", default=list(defaults.backlogs))
    parser.add_argument("--vips", type=int, default=defaults.vips)
    parser.add_argument("--vip-rate", type=float, default=defaults.vip_rate)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--job-seconds", type=float, default=defaults.job_seconds)
    args = parser.parse_args(argv)
    return Plan(tuple(args.backlogs), args.vips, args.vip_rate, args.workers, args.job_seconds)


async def main_async(plan: Plan) -> None:
    results = []
    for backlog in plan.backlogs:
        print(f"backlog {backlog}:")
        results.append(await run_case(plan, backlog))
    report(plan, results)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(main_async(parse_args()))
