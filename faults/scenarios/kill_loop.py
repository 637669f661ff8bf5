"""Random SIGKILL loop under load on SQLite: kill the only server at random gaps, restart it at
once, keep the clients submitting throughout; nothing acknowledged may be lost. Callbacks are
on: every order asks for one, the receiver refuses a fifth of the deliveries, and every final
order's outcome must reach it at least once."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, replace

from faults.checker import Report
from faults.client import OrderShape
from faults.process import ServerConfig
from faults.scenario import finished, scenario, under_load, wait_for_acks


@dataclass(frozen=True, slots=True)
class KillLoop:
    kills: int = 25
    min_gap: float = 1.0
    max_gap: float = 8.0
    clients: int = 4
    workers: int = 16
    lease_seconds: float = 2.0
    seed: int = 1


SHORT = KillLoop(kills=3, min_gap=1.0, max_gap=3.0)
LONG = KillLoop()
SHAPE = OrderShape(min_duration=0.0, max_duration=0.4)
"""Orders long enough that every kill interrupts some of them mid-run."""


async def run(params: KillLoop = SHORT) -> Report:
    async with scenario("sqlite_kill_loop") as context:
        db = context.sqlite_url()
        flags = await context.with_callbacks()
        assert context.receiver is not None
        server = context.server(ServerConfig(
            db, workers=params.workers, lease_seconds=params.lease_seconds, flags=flags))
        await server.start()
        rng = random.Random(params.seed)
        shape = replace(SHAPE, callback_url=context.receiver.url + "/hook/")
        async with under_load(context, params.clients, shape, pause=0.1, seed=params.seed):
            for _ in range(params.kills):
                await asyncio.sleep(rng.uniform(params.min_gap, params.max_gap))
                await context.kill(server)
                await server.start()
            flowing = await wait_for_acks(context.history, 10, timeout=10)
        report = await context.finish(db)
        report.expect("kills", report.faults == params.kills, report.faults)
        report.expect("accepting_after_last_restart", flowing, flowing)
        report.expect("callbacks_signed", context.receiver.bad_signatures == 0,
                      context.receiver.bad_signatures)
        report.checks["callbacks_refused_by_receiver"] = context.receiver.refused
        return finished(report)
