"""Throughput of the SQLite store itself (no HTTP): concurrent submits, and claim+complete.

    .venv/bin/python bench/sqlite_store.py [--seconds 5] [--durability full|normal]

Each number is one run on a fresh file in a temporary folder; it says how many writes the group
commit turns into one transaction (writes per commit).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Literal

from skipline.clock import SystemClock
from skipline.domain.models import NewOrder
from skipline.store.sqlite import SqliteStore


def order() -> NewOrder:
    return NewOrder(id=str(uuid.uuid4()), tier="regular", priority=1, payload={"n": 1},
                    max_wait=300.0)


async def submits(store: SqliteStore, submitters: int, seconds: float) -> tuple[float, float]:
    """Orders per second with `submitters` concurrent callers, and writes per commit."""
    deadline = time.perf_counter() + seconds
    done = 0
    batches = store.committed_batches

    async def submitter() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await store.submit(order())
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(submitter() for _ in range(submitters)))
    elapsed = time.perf_counter() - started
    return done / elapsed, done / max(1, store.committed_batches - batches)


async def fill(store: SqliteStore, count: int) -> None:
    """Queue `count` orders, 64 submitters at a time."""
    remaining = count

    async def submitter() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await store.submit(order())

    await asyncio.gather(*(submitter() for _ in range(64)))


async def claim_complete(store: SqliteStore, workers: int, jobs: int) -> tuple[float, float]:
    """Jobs per second when `workers` loop claim(1) -> complete until `jobs` queued orders are
    done, and writes per commit."""
    await fill(store, jobs)
    done = 0
    batches = store.committed_batches

    async def worker(name: str) -> None:
        nonlocal done
        while leases := await store.claim(name, 1, 30.0):
            for lease in leases:
                await store.complete(lease.order.id, lease.token, {"ok": True})
                done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(f"w{n}") for n in range(workers)))
    elapsed = time.perf_counter() - started
    writes = 2 * done
    return done / elapsed, writes / max(1, store.committed_batches - batches)


async def opened(folder: str, name: str, durability: Literal["full", "normal"]) -> SqliteStore:
    store = SqliteStore(str(Path(folder) / name), SystemClock(), durability)
    await store.open()
    return store


async def main(seconds: float, durability: Literal["full", "normal"]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for submitters in (1, 64):
            store = await opened(folder, f"submit-{submitters}.db", durability)
            rate, per_commit = await submits(store, submitters, seconds)
            await store.close()
            print(f"submit, {submitters:3d} concurrent, synchronous={durability}: "
                  f"{rate:8.0f} orders/s  ({per_commit:.1f} writes per commit)")
        for workers in (1, 3, 16, 64):
            store = await opened(folder, f"claim-{workers}.db", durability)
            jobs = 2000 if workers == 1 else 10_000
            rate, per_commit = await claim_complete(store, workers, jobs)
            await store.close()
            print(f"claim(1)+complete, {workers:3d} workers, {jobs} jobs: "
                  f"{rate:8.0f} jobs/s  ({per_commit:.1f} writes per commit)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--durability", choices=["full", "normal"], default="full")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.seconds, arguments.durability))
