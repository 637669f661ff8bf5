"""The short tier of the fault harness, in the normal pytest run: every scenario with small
parameters (a few kills, each crash point once, poison, disk full, partitions, ...; the soak
runs in the long tier only), against real `skipline serve` processes, real signals and real
databases. A failure prints the scenario's
JSON report, whose `workdir` keeps the logs, history and journal.

The long tier is one command: `.venv/bin/python -m faults.run long`."""

from __future__ import annotations

import pytest

from faults.registry import SCENARIOS
from faults.scenarios.crash_points import CRASH_POINTS
from faults.scenarios.disk_full import Unsupported


async def run_short(name: str) -> None:
    report = await SCENARIOS[name].run(long=False)
    assert report.passed, report.to_json()
    assert report.attempted > 0


async def test_sqlite_kill_loop() -> None:
    await run_short("sqlite_kill_loop")


@pytest.mark.parametrize("point", list(CRASH_POINTS))
async def test_crash_point(point: str) -> None:
    await run_short(f"crash_{point}")


async def test_poison_order_that_raises() -> None:
    await run_short("poison_raise")


async def test_poison_order_that_kills_its_process() -> None:
    await run_short("poison_kill")


async def test_sigterm_storm() -> None:
    await run_short("sigterm_storm")


async def test_slow_handler_with_heartbeats() -> None:
    await run_short("slow_heartbeats")


async def test_slow_handler_without_heartbeats_is_caught() -> None:
    await run_short("slow_no_heartbeats")


async def test_sqlite_disk_full() -> None:
    try:
        await run_short("sqlite_disk_full")
    except Unsupported as exc:
        pytest.skip(str(exc))


@pytest.mark.postgres
async def test_postgres_kill_loop() -> None:
    await run_short("postgres_kill_loop")


@pytest.mark.postgres
async def test_postgres_restart() -> None:
    await run_short("postgres_restart")


@pytest.mark.postgres
async def test_postgres_partition_worker() -> None:
    await run_short("postgres_partition_worker")


@pytest.mark.postgres
async def test_a_planted_fencing_bug_is_caught_by_the_checker() -> None:
    """The partition scenario against skipline with its completion fence removed
    (faults.stale_fence): the old worker's late results are accepted, and the checker must say
    so (stale results, an invalid run); the scenario passes only when it does."""
    report = await SCENARIOS["postgres_partition_stale_fence"].run(long=False)
    assert report.passed, report.to_json()
    assert report.stale_results > 0 and not report.valid, report.to_json()


@pytest.mark.postgres
async def test_postgres_partition_api() -> None:
    await run_short("postgres_partition_api")


@pytest.mark.postgres
async def test_postgres_slow_network() -> None:
    await run_short("postgres_slow_network")
