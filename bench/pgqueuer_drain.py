"""PgQueuer's no-op drain, the yardstick of bench/e2e_throughput.py: enqueue N jobs (not
timed), then time `consumers` PgQueuer consumers (one connection each, `batch` jobs per
dequeue, drain mode) until the queue is empty. Prints one JSON line.

Runs in the benchmark's own virtual environment, where PgQueuer is installed; PgQueuer is never
a dependency of skipline:

    <venv>/bin/python bench/pgqueuer_drain.py postgresql://… --jobs 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import asyncpg
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job
from pgqueuer.queries import Queries
from pgqueuer.types import QueueExecutionMode

ENQUEUE_CHUNK = 5000


async def fill(url: str, jobs: int) -> None:
    """Install PgQueuer's schema in the (fresh) database and enqueue `jobs` no-op jobs, then
    ANALYZE (untimed): without statistics its dequeue query was planned for an empty table,
    and 50,000 jobs drained at 3.2k/s instead of 11.2k/s. The yardstick should be PgQueuer at
    its best."""
    connection = await asyncpg.connect(url)
    try:
        queries = Queries(AsyncpgDriver(connection))
        await queries.install()
        for start in range(0, jobs, ENQUEUE_CHUNK):
            count = min(ENQUEUE_CHUNK, jobs - start)
            await queries.enqueue(["noop"] * count, [None] * count, [0] * count)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def consume(url: str, batch: int, done: list[int]) -> None:
    connection = await asyncpg.connect(url)
    try:
        queue = PgQueuer(AsyncpgDriver(connection))

        @queue.entrypoint("noop")
        async def noop(job: Job) -> None:
            done[0] += 1

        await queue.run(batch_size=batch, mode=QueueExecutionMode.drain)
    finally:
        await connection.close()


async def drain(url: str, jobs: int, consumers: int, batch: int) -> dict[str, float]:
    await fill(url, jobs)
    done = [0]
    started = time.perf_counter()
    await asyncio.gather(*(consume(url, batch, done) for _ in range(consumers)))
    elapsed = time.perf_counter() - started
    return {"jobs": done[0], "seconds": elapsed, "per_second": done[0] / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--consumers", type=int, default=5)
    parser.add_argument("--batch", type=int, default=10)
    options = parser.parse_args()
    result = asyncio.run(drain(options.url, options.jobs, options.consumers, options.batch))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
