"""A handler three times slower than its lease. With heartbeats the worker renews the lease and
each order runs once. With heartbeats off (`--no-heartbeats`, a fault-testing switch) the lease
expires mid-run, the order is handed to another slot while the first run goes on, and the
checker must see it: this variant passes only when the duplicates are caught."""

from __future__ import annotations

from dataclasses import dataclass

from faults.checker import Report
from faults.client import OrderShape, Recorder, submit_batch
from faults.process import ServerConfig
from faults.scenario import finished, scenario


@dataclass(frozen=True, slots=True)
class SlowHandler:
    heartbeats: bool = True
    orders: int = 4
    lease_seconds: float = 1.0
    factor: float = 3.0
    """How many leases one run of the handler lasts."""
    workers: int = 8
    """Twice the orders: a free slot is always there to take an order whose lease expired, so
    a lost lease shows up as two runs at once, the harm leases exist to prevent."""


SHORT = SlowHandler()
LONG = SlowHandler(orders=8, workers=16)
SHORT_OFF = SlowHandler(heartbeats=False)
LONG_OFF = SlowHandler(heartbeats=False, orders=8, workers=16)


async def run(params: SlowHandler = SHORT) -> Report:
    name = "slow_heartbeats" if params.heartbeats else "slow_no_heartbeats"
    async with scenario(name) as context:
        db = context.sqlite_url()
        server = context.server(ServerConfig(
            db, workers=params.workers, lease_seconds=params.lease_seconds,
            flags=() if params.heartbeats else ("--no-heartbeats",),
        ))
        await server.start()
        seconds = params.factor * params.lease_seconds
        shape = OrderShape(min_duration=seconds, max_duration=seconds)
        async with Recorder(context.history, context.urls()) as recorder:
            await submit_batch(recorder, params.orders, shape)
        report = await context.finish(db)
        caught = report.duplicate_runs + report.overlapping_runs
        if params.heartbeats:
            report.expect("no_duplicate_runs", caught == 0, {
                "duplicate_runs": report.duplicate_runs, "overlapping": report.overlapping_runs,
            })
        else:
            report.must_be_valid = False
            report.expect("duplicates_caught", caught > 0, {
                "duplicate_runs": report.duplicate_runs, "overlapping": report.overlapping_runs,
                "lost": report.lost,
            })
        return finished(report)
