"""Every scenario by name: what it does, how to run its short (CI) and long variants, and the
time bound of each."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from faults.checker import Report
from faults.scenarios import (
    crash_points,
    disk_full,
    kill_loop,
    partitions,
    poison,
    postgres,
    sigterm,
    slow,
    soak,
)

Runner = Callable[[], Awaitable[Report]]


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    summary: str
    short: Runner
    long: Runner
    short_limit: float
    """Seconds the short variant may take before it counts as failed."""
    long_limit: float
    long_tier_only: bool = False
    """Left out of the short tier (still runnable alone with its short parameters)."""

    def run(self, long: bool) -> Awaitable[Report]:
        return (self.long if long else self.short)()

    def time_limit(self, long: bool) -> float:
        return self.long_limit if long else self.short_limit


ENTRIES = [
    Entry("sqlite_kill_loop", "SIGKILL the SQLite server at random gaps, restart at once",
          partial(kill_loop.run, kill_loop.SHORT), partial(kill_loop.run, kill_loop.LONG),
          90, 300),
    *(
        Entry(f"crash_{point}", f"crash point {point} ({what}), then restart without it",
              partial(crash_points.run, point, crash_points.SHORT),
              partial(crash_points.run, point, crash_points.LONG), 60, 150)
        for point, (what, _) in crash_points.CRASH_POINTS.items()
    ),
    Entry("poison_raise", "orders whose handler always raises, amid healthy load",
          partial(poison.run_raise, poison.RAISE_SHORT),
          partial(poison.run_raise, poison.RAISE_LONG), 60, 120),
    Entry("poison_kill", "an order whose handler kills its own process, amid healthy load",
          partial(poison.run_kill, poison.KILL_SHORT),
          partial(poison.run_kill, poison.KILL_LONG), 90, 150),
    Entry("sigterm_storm", "SIGTERM five times in half a second under load",
          partial(sigterm.run, sigterm.SHORT), partial(sigterm.run, sigterm.LONG), 60, 120),
    Entry("slow_heartbeats", "a handler three leases long, heartbeats on: no duplicate run",
          partial(slow.run, slow.SHORT), partial(slow.run, slow.LONG), 60, 90),
    Entry("slow_no_heartbeats", "the same with heartbeats off: the checker must catch duplicates",
          partial(slow.run, slow.SHORT_OFF), partial(slow.run, slow.LONG_OFF), 60, 90),
    Entry("sqlite_disk_full", "fill the SQLite database's filesystem under load, then free it",
          partial(disk_full.run, disk_full.SHORT), partial(disk_full.run, disk_full.LONG),
          60, 150),
    Entry("postgres_kill_loop", "two processes on PostgreSQL, one SIGKILLed at random every 10 s",
          partial(postgres.run_kill_loop, postgres.KILL_SHORT),
          partial(postgres.run_kill_loop, postgres.KILL_LONG), 90, 200),
    Entry("postgres_restart", "two processes on PostgreSQL; the database stopped hard, restarted",
          partial(postgres.run_restart, postgres.RESTART_SHORT),
          partial(postgres.run_restart, postgres.RESTART_LONG), 90, 200),
    Entry("postgres_partition_worker",
          "a worker blackholed from PostgreSQL past its leases while its handlers run",
          partial(partitions.run_worker_partition, partitions.WORKER_SHORT),
          partial(partitions.run_worker_partition, partitions.WORKER_LONG), 60, 120),
    Entry("postgres_partition_stale_fence",
          "the same with a planted fencing bug: the checker must catch the stale results",
          partial(partitions.run_worker_partition, partitions.STALE_FENCE),
          partial(partitions.run_worker_partition, partitions.STALE_FENCE), 60, 60),
    Entry("postgres_partition_api",
          "an API process blackholed, then its answers lost, then cut, while clients submit",
          partial(partitions.run_api_partition, partitions.API_SHORT),
          partial(partitions.run_api_partition, partitions.API_LONG), 60, 150),
    Entry("postgres_slow_network", "50-200 ms latency with jitter on every connection under load",
          partial(partitions.run_slow_network, partitions.SLOW_SHORT),
          partial(partitions.run_slow_network, partitions.SLOW_LONG), 60, 330),
    Entry("soak", "two API and two worker processes on PostgreSQL, random faults, callbacks on "
          "(2 min; 30 min with --long)",
          partial(soak.run, soak.SHORT), partial(soak.run, soak.LONG),
          soak.SHORT.seconds + 240, soak.LONG.seconds + 300, long_tier_only=True),
]
SCENARIOS = {entry.name: entry for entry in ENTRIES}
SHORT_TIER = [entry.name for entry in ENTRIES if not entry.long_tier_only]
"""The short tier: every scenario but the soak, each in its short form."""
LONG_TIER = [entry.name for entry in ENTRIES]
"""The long tier: every scenario in its long form, the thirty-minute soak last."""
