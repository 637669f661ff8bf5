"""PostgreSQL, scaled out: two `skipline serve` processes on one database.

- kill loop: every interval one of the two, chosen at random, is SIGKILLed and restarted; the
  survivor's lease reaper hands the victim's orders on;
- database restart: the PostgreSQL server itself is stopped hard (`pg_ctl -m immediate`, a
  crash) and started again; both processes must ride it out (503 while it is down, never a 202
  that is then lost) and accept again once it is back, without being restarted.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from faults.checker import Report, order_key
from faults.client import OrderShape
from faults.history import Answer
from faults.postgres import any_database, database_on, throwaway_cluster
from faults.process import ServerConfig
from faults.scenario import (
    Context,
    finished,
    scenario,
    statuses_between,
    under_load,
    wait_for_acks,
)

SHAPE = OrderShape(min_duration=0.0, max_duration=0.4)
IN_DOUBT = "refused_503_yet_stored_at_db_stop"


@dataclass(frozen=True, slots=True)
class PostgresKillLoop:
    kills: int = 10
    interval: float = 10.0
    processes: int = 2
    workers: int = 8
    clients: int = 4
    lease_seconds: float = 2.0
    seed: int = 2


@dataclass(frozen=True, slots=True)
class PostgresRestart:
    rounds: int = 1
    down_seconds: float = 3.0
    settle_seconds: float = 6.0
    """Pause after each round (see DiskFull.settle_seconds)."""
    processes: int = 2
    workers: int = 8
    clients: int = 4


KILL_SHORT = PostgresKillLoop(kills=2, interval=3.0)
KILL_LONG = PostgresKillLoop()
RESTART_SHORT = PostgresRestart(settle_seconds=0.0)
RESTART_LONG = PostgresRestart(rounds=3, down_seconds=5.0)


def start_servers(context: Context, url: str, count: int, workers: int,
                  lease_seconds: float = 2.0) -> list[ServerConfig]:
    configs = [ServerConfig(url, workers=workers, lease_seconds=lease_seconds)
               for _ in range(count)]
    for index, config in enumerate(configs):
        context.server(config, name=f"server{index + 1}")
    return configs


async def run_kill_loop(params: PostgresKillLoop = KILL_SHORT) -> Report:
    async with scenario("postgres_kill_loop") as context, any_database() as url:
        start_servers(context, url, params.processes, params.workers, params.lease_seconds)
        for server in context.servers:
            await server.start()
        rng = random.Random(params.seed)
        async with under_load(context, params.clients, SHAPE, pause=0.1, seed=params.seed):
            for _ in range(params.kills):
                await asyncio.sleep(params.interval)
                victim = rng.choice(context.servers)
                await context.kill(victim)
                await victim.start()
            flowing = await wait_for_acks(context.history, 10, timeout=10)
        report = await context.finish(url)
        report.expect("kills", report.faults == params.kills, report.faults)
        report.expect("accepting_after_last_restart", flowing, flowing)
        return finished(report)


async def run_restart(params: PostgresRestart = RESTART_SHORT) -> Report:
    async with scenario("postgres_restart") as context, throwaway_cluster() as cluster, \
            database_on(cluster) as url:
        start_servers(context, url, params.processes, params.workers)
        for server in context.servers:
            await server.start()
        windows, back_to_202 = [], []
        async with under_load(context, params.clients, SHAPE, pause=0.1):
            for _ in range(params.rounds):
                await wait_for_acks(context.history, 30, timeout=15)
                context.history.fault("postgres_stop_immediate")
                await asyncio.to_thread(cluster.stop, "immediate")
                down_at = time.time()
                await asyncio.sleep(params.down_seconds)
                await asyncio.to_thread(cluster.start)
                up_at = time.time()
                windows.append(statuses_between(context.history, down_at, up_at))
                resumed = await wait_for_acks(context.history, 20, timeout=30)
                back_to_202.append(_first_202_after(context, up_at) if resumed else None)
                await asyncio.sleep(params.settle_seconds)
        survived = all(s.running and s.starts == 1 for s in context.servers)
        report = await context.finish(url)
        report.expect("processes_survived", survived, survived)
        report.expect("refused_503_while_down", all(map(_refused_with_503, windows)), windows)
        report.expect("seconds_from_db_start_to_next_202",
                      all(t is not None for t in back_to_202), back_to_202)
        in_doubt = _refused_yet_stored_at_stop(context)
        report.expect(IN_DOUBT, in_doubt == 0, in_doubt)
        return finished(report)


def _refused_with_503(told: dict[str, int]) -> bool:
    """While the database is down, refusals are 503s (never a 500, never a dead server), and
    there are some. Acknowledgements may still happen: a commit retried once it is back."""
    refusals = {outcome for outcome in told if outcome.startswith("refused_")}
    return refusals == {"refused_503"}


def _refused_yet_stored_at_stop(context: Context) -> int:
    """Stored orders whose client was told 503 within a second of a database stop: a commit
    that landed while the connection died before its reply, answered as a refusal (the
    PostgreSQL store settles such commits before answering, so there must be none). They are
    counted as `unexpected` too; this names the cause."""
    stops = [fault.at for fault in context.history.faults]
    refused = {s.key: s for s in context.history.submissions
               if s.outcome is Answer.REFUSED and s.status == 503}
    return sum(
        1 for order in context.orders
        if (key := order_key(order)) in refused
        and any(0 <= refused[key].sent_at - stop < 1.0 for stop in stops)
    )


def _first_202_after(context: Context, moment: float) -> float | None:
    later = [s.done_at for s in context.history.submissions
             if s.status == 202 and s.done_at > moment]
    return round(min(later) - moment, 3) if later else None
