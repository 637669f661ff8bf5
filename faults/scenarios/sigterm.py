"""An impatient supervisor: SIGTERM five times in half a second under load. The server must
drain once, exit 0, and lose nothing; what it could not finish in its drain it hands back at
once (released leases), so after a restart those orders run without waiting for a lease."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass

from faults.checker import Report
from faults.client import OrderShape
from faults.process import ServerConfig
from faults.scenario import finished, scenario, under_load, wait_for_acks


@dataclass(frozen=True, slots=True)
class SigtermStorm:
    signals: int = 5
    spread: float = 0.5
    """Seconds over which the signals are sent."""
    drain_timeout: float = 1.0
    """Short, so some orders finish inside the drain and the longer ones are released."""
    lease_seconds: float = 15.0
    """Long, so an order that waited for its lease instead of being released shows up."""
    rounds: int = 1
    workers: int = 16
    clients: int = 2


SHORT = SigtermStorm()
LONG = SigtermStorm(rounds=3)
SHAPE = OrderShape(min_duration=0.2, max_duration=2.5)
EXIT_MARGIN = 10.0
"""Seconds beyond the drain timeout the process may take to exit (HTTP shutdown, close)."""


async def run(params: SigtermStorm = SHORT) -> Report:
    async with scenario("sigterm_storm") as context:
        db = context.sqlite_url()
        server = context.server(ServerConfig(
            db, workers=params.workers, lease_seconds=params.lease_seconds,
            drain_timeout=params.drain_timeout,
        ))
        await server.start()
        codes, exit_seconds = [], []
        async with under_load(context, params.clients, SHAPE, pause=0.25):
            for _ in range(params.rounds):
                await wait_for_acks(context.history, 20, timeout=10)
                await asyncio.sleep(1.0)  # let orders start running
                fault = context.history.fault(f"SIGTERM x{params.signals}", server.pid)
                for _ in range(params.signals):
                    server.signal(signal.SIGTERM)
                    await asyncio.sleep(params.spread / params.signals)
                codes.append(await server.wait_exit(params.drain_timeout + EXIT_MARGIN))
                exit_seconds.append(round(time.time() - fault.at, 2))
                await server.start()
            await wait_for_acks(context.history, 10, timeout=10)
        report = await context.finish(db)
        report.expect("exit_codes", all(code == 0 for code in codes), codes)
        report.expect("exit_seconds", True, exit_seconds)
        slowest = report.recovery_to_completion.max
        released = slowest is not None and slowest < params.lease_seconds
        report.expect("interrupted_orders_released_not_expired", released, slowest)
        return finished(report)
