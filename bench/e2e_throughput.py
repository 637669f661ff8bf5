"""End-to-end no-op throughput: orders per second from the first submission until every order
has succeeded, for skipline on SQLite and on PostgreSQL, against PgQueuer's no-op drain on the
same PostgreSQL server, and against the bare durable SQLite queue of `bench/sqlite_floor.py`
(batches of `--slots`, the pool's claim size), in the same run (rounds interleaved, medians
compared). Prints the ratios and the targets in docs/architecture.md (PostgreSQL >= 2x
PgQueuer, SQLite >= 0.6x the bare floor).

    .venv/bin/python bench/e2e_throughput.py                     # 3 rounds of 20,000 orders
    .venv/bin/python bench/e2e_throughput.py --orders 5000 --rounds 1
    .venv/bin/python bench/e2e_throughput.py --pg postgresql://user@host:5432/postgres

Each skipline figure runs in a fresh process: `OrderService.submit` of payload-less orders
(PgQueuer's jobs are payload-less too) from `--submitters` concurrent callers, every order
durably committed before it is acknowledged (full durability), while `--slots` worker slots
run a no-op handler: one `WorkerPool` in the same process, as an application embedding
skipline would (kinds `sqlite`, `postgres`), or, for `postgres-split` (not run by default),
`--worker-processes` real `skipline worker` processes (built-in `simulate` handler, duration
0), as a scaled-out deployment would. PgQueuer runs in its own virtual environment (created
on first use under ~/.cache/skipline-bench, never a skipline dependency): its jobs are
enqueued first, untimed, then `bench/pgqueuer_drain.py` times five consumers draining them,
as PgQueuer's own drain benchmark does. Every run gets a fresh database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg

HERE = Path(__file__).resolve().parent
PGQUEUER_VENV = Path.home() / ".cache" / "skipline-bench" / "pgqueuer-venv"
PGQUEUER_PACKAGES = ["pgqueuer", "asyncpg"]
TARGETS = {"postgres": ("pgqueuer", 2.0), "postgres-split": ("pgqueuer", 2.0),
           "sqlite": ("sqlite-floor", 0.6)}
"""Per skipline store: the baseline kind it is compared with, and the ratio required."""
BASELINES = {"pgqueuer": "PgQueuer's drain", "sqlite-floor": "the bare SQLite floor"}
RUN_TIMEOUT = 600
STARTUP_SECONDS = 60
POLL_SECONDS = 0.01


# --- one skipline run (in its own process) -------------------------------------------------------
async def skipline_run(
    url: str, orders: int, slots: int, submitters: int, worker_processes: int,
) -> dict[str, float]:
    """Submit `orders` through OrderService while workers run a no-op handler: a WorkerPool in
    this process, or `worker_processes` real `skipline worker` processes sharing the slots.
    Seconds from the first submission until all of them have succeeded."""
    from skipline.config import Settings
    from skipline.domain.models import ANONYMOUS
    from skipline.service import OrderService, OrderSpec
    from skipline.store import open_store

    store = open_store(url)
    await store.open()
    service = OrderService(store, Settings(db=url, workers=slots))
    remaining = iter(range(orders))

    async def submitter() -> None:
        for _ in remaining:
            await service.submit(ANONYMOUS, OrderSpec())

    workers = (
        in_process_workers(store, slots, orders) if worker_processes == 0
        else worker_process_group(url, worker_processes, slots, service)
    )
    async with workers as all_handled:
        before = await succeeded(store)
        commits = getattr(store, "committed_batches", 0)
        started, cpu_before = time.perf_counter(), cpu_seconds()
        await asyncio.gather(*(submitter() for _ in range(submitters)))
        submitted = time.perf_counter()
        await all_handled.wait()
        await all_succeeded(store, before + orders)
        finished, cpu_after = time.perf_counter(), cpu_seconds()
        commits = getattr(store, "committed_batches", 0) - commits
    await store.close()
    return {
        "orders": orders, "seconds": finished - started,
        "per_second": orders / (finished - started),
        "submit_per_second": orders / (submitted - started),
        **{f"{name}_cpu_us_per_order": max(0.0, cpu_after[name] - cpu_before[name]) / orders
           * 1e6 for name in cpu_before},
        "orders_per_commit": orders / commits if commits else 0.0,
    }


def cpu_seconds() -> dict[str, float]:
    """CPU of this process so far: the event loop's thread (this one) and the others (the
    SQLite writer), each in all and in the kernel."""
    process = resource.getrusage(resource.RUSAGE_SELF)
    loop = resource.getrusage(resource.RUSAGE_THREAD)
    return {
        "submitting_process": process.ru_utime + process.ru_stime,
        "loop": loop.ru_utime + loop.ru_stime, "loop_kernel": loop.ru_stime,
        "threads": process.ru_utime + process.ru_stime - loop.ru_utime - loop.ru_stime,
        "threads_kernel": process.ru_stime - loop.ru_stime,
    }


@asynccontextmanager
async def in_process_workers(store: Any, slots: int, orders: int) -> AsyncIterator[asyncio.Event]:
    """A WorkerPool in this process whose no-op handler sets the event after `orders` runs."""
    from skipline.config import Settings
    from skipline.runtime import Workers

    handled = 0
    all_handled = asyncio.Event()

    async def noop(order: Any) -> None:
        nonlocal handled
        handled += 1
        if handled >= orders:
            all_handled.set()

    workers = Workers(store, Settings(workers=slots), noop)
    await workers.start()
    try:
        yield all_handled
    finally:
        await workers.stop()


@asynccontextmanager
async def worker_process_group(
    url: str, count: int, slots: int, service: Any,
) -> AsyncIterator[asyncio.Event]:
    """`count` real `skipline worker` processes (built-in `simulate` handler, duration 0),
    ready once a warm-up order has succeeded; the event is set at once (the caller then
    watches the store)."""
    from skipline.domain.models import ANONYMOUS
    from skipline.service import OrderSpec

    argv = [sys.executable, "-m", "skipline", "worker", "--db", url, "--concurrency",
            str(max(1, slots // count)), "--log-level", "warning"]
    processes = [await asyncio.create_subprocess_exec(*argv) for _ in range(count)]
    try:
        warm_up, _ = await service.submit(ANONYMOUS, OrderSpec())
        await poll_until(lambda: finished(service.store, warm_up.id), STARTUP_SECONDS)
        ready = asyncio.Event()
        ready.set()
        yield ready
    finally:
        for process in processes:
            process.terminate()
        await asyncio.wait_for(asyncio.gather(*(p.wait() for p in processes)), 30)


async def finished(store: Any, order_id: str) -> bool:
    order = await store.get(order_id)
    return order is not None and order.status.value == "succeeded"


async def poll_until(condition: Callable[[], Awaitable[bool]], seconds: float) -> None:
    """Poll `condition` every 10 ms until it holds; fail after `seconds`."""
    for _ in range(int(seconds / POLL_SECONDS)):
        if await condition():
            return
        await asyncio.sleep(POLL_SECONDS)
    raise RuntimeError(f"not done after {seconds} s")


async def succeeded(store: Any) -> int:
    stats = await store.stats()
    return sum(tier.succeeded for tier in stats.counts.values())


async def all_succeeded(store: Any, expected: int) -> None:
    """Wait until the store reports `expected` orders succeeded (polled only once the
    submissions are done, and for an in-process pool only once its handler saw them all)."""

    async def done() -> bool:
        return await succeeded(store) >= expected

    await poll_until(done, RUN_TIMEOUT)


# --- databases and processes ----------------------------------------------------------------------
@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server of `server_url`; dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(server_url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run_json(argv: list[str]) -> dict[str, float]:
    """Run a benchmark process and parse the JSON line it prints last."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])}… failed:\n{result.stderr[-2000:]}")
    parsed: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


def pgqueuer_python() -> str:
    """The benchmark's own interpreter with PgQueuer, created on first use."""
    python = PGQUEUER_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {PGQUEUER_VENV} with {' '.join(PGQUEUER_PACKAGES)}…", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PGQUEUER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PGQUEUER_PACKAGES],
                       check=True)
    return str(python)


def measure(kind: str, options: argparse.Namespace) -> dict[str, float]:
    """One run of `kind` (pgqueuer, sqlite-floor, postgres or sqlite) on a fresh database."""
    if kind in ("sqlite-floor", "sqlite-writes"):
        return run_json([sys.executable, str(HERE / "sqlite_floor.py"), "--orders",
                         str(options.orders), "--one", str(options.slots),
                         *(["--store-writes"] if kind == "sqlite-writes" else [])])
    if kind == "pgqueuer":
        with fresh_database(options.pg) as url:
            return run_json([pgqueuer_python(), str(HERE / "pgqueuer_drain.py"), url,
                             "--jobs", str(options.orders)])
    if kind.startswith("postgres"):
        processes = options.worker_processes if kind == "postgres-split" else 0
        with fresh_database(options.pg) as url:
            return run_json(one_run_argv(url, options, processes))
    with tempfile.TemporaryDirectory(prefix="skipline-bench-") as folder:
        return run_json(one_run_argv(f"sqlite:///{folder}/bench.db", options, 0))


def one_run_argv(url: str, options: argparse.Namespace, worker_processes: int) -> list[str]:
    return [sys.executable, __file__, "--one", url, "--orders", str(options.orders),
            "--slots", str(options.slots), "--submitters", str(options.submitters),
            "--worker-processes", str(worker_processes)]


def cpu_text(outcome: dict[str, float]) -> str:
    """For a skipline run: wall time and CPU per order, the event loop's thread and the others
    (the SQLite writer), which share one GIL."""
    if "loop_cpu_us_per_order" not in outcome:
        return ""
    return (f"   per order: {1e6 / outcome['per_second']:.1f} µs wall, CPU "
            f"{outcome['loop_cpu_us_per_order']:.1f} µs loop "
            f"(kernel {outcome['loop_kernel_cpu_us_per_order']:.1f}) + "
            f"{outcome['threads_cpu_us_per_order']:.1f} µs other threads "
            f"(kernel {outcome['threads_kernel_cpu_us_per_order']:.1f})"
            + (f"; {outcome['orders_per_commit']:.1f} orders per commit"
               if outcome["orders_per_commit"] else ""))


# --- the report ----------------------------------------------------------------------------------
def report(results: dict[str, list[float]]) -> None:
    medians = {kind: statistics.median(values) for kind, values in results.items()}
    print("\norders/s (median of rounds; every round listed)")
    for kind, values in results.items():
        rounds = ", ".join(f"{v:,.0f}" for v in values)
        print(f"  {kind:<22} {medians[kind]:>9,.0f}   [{rounds}]")
    print("\nratio to the baseline of the same run (target)")
    for kind, (baseline, target) in TARGETS.items():
        if kind in medians and medians.get(baseline):
            ratio = medians[kind] / medians[baseline]
            verdict = "meets" if ratio >= target else "misses"
            print(f"  skipline {kind:<15} {ratio:5.2f}x {BASELINES[baseline]:<22} "
                  f"({verdict} >= {target:g}x)")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slots", type=int, default=200, help="WorkerPool slots")
    parser.add_argument("--submitters", type=int, default=200,
                        help="concurrent OrderService.submit callers")
    parser.add_argument("--pg", default=os.environ.get(
        "SKIPLINE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server (any database on it; fresh ones are created and dropped)")
    parser.add_argument("--worker-processes", type=int, default=2,
                        help="`skipline worker` processes of the postgres-split kind")
    parser.add_argument("--kinds", default="pgqueuer,postgres,sqlite-floor,sqlite",
                        help="postgres: one process; postgres-split: this process submits, "
                             "--worker-processes `skipline worker` processes work; "
                             "sqlite-floor: bench/sqlite_floor.py, batches of --slots; "
                             "sqlite-writes: the SQLite store's own writes alone, the same way")
    parser.add_argument("--one", metavar="URL", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    options = parse()
    if options.one:
        result = asyncio.run(skipline_run(
            options.one, options.orders, options.slots, options.submitters,
            options.worker_processes))
        print(json.dumps(result))
        return
    kinds = options.kinds.split(",")
    print(f"{options.orders:,} no-op orders per run, {options.rounds} round(s); "
          f"skipline: {options.submitters} submitters, {options.slots} worker slots")
    results: dict[str, list[float]] = {kind: [] for kind in kinds}
    for round_number in range(options.rounds):
        for kind in kinds[round_number % len(kinds):] + kinds[:round_number % len(kinds)]:
            outcome = measure(kind, options)
            results[kind].append(outcome["per_second"])
            print(f"round {round_number + 1}: {kind:<15} {outcome['per_second']:>9,.0f}/s"
                  f"{cpu_text(outcome)}", flush=True)
    report(results)


if __name__ == "__main__":
    main()
