"""Targeted crashes: arm one crash point (SKIPLINE_FAULT, read once at start), let the load reach
it, restart without it, and check that the crash cost nothing acknowledged. Each point also
has the consequence it must visibly have, so a point that never fired cannot pass."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from faults.checker import Report
from faults.client import OrderShape
from faults.process import ServerConfig
from faults.scenario import Context, finished, scenario, under_load, wait_for_acks

Expectation = Callable[[Report, Context], tuple[bool, object]]


def _unknown_and_absent(report: Report, context: Context) -> tuple[bool, object]:
    """Killed inside the transaction: the client got no answer and the order is not stored."""
    return report.unknown_absent >= 1, {"unknown_absent": report.unknown_absent}


def _unknown_and_recovered(report: Report, context: Context) -> tuple[bool, object]:
    """Killed between the commit and the 202: no answer, yet the order is stored and runs."""
    return report.recovered >= 1, {"recovered": report.recovered}


def _claimed_but_never_run(report: Report, context: Context) -> tuple[bool, object]:
    """Killed right after a claim: those orders were leased (an attempt counted) but their
    handler never started; they run once after the lease expires."""
    runs = Counter(run.order_id for run in context.runs)
    skipped = sum(1 for o in context.orders if o.attempts > runs[o.id])
    return skipped >= 1 and report.rerun_orders == 0, {
        "claimed_not_run": skipped, "rerun_orders": report.rerun_orders,
    }


def _handler_ran_again(report: Report, context: Context) -> tuple[bool, object]:
    """Killed after the handler returned but before its success was committed: the order runs
    again (at least once), and that repeat is visible in the journal."""
    return report.rerun_orders >= 1, {"rerun_orders": report.rerun_orders}


CRASH_POINTS: dict[str, tuple[str, Expectation]] = {
    "before_commit": ("store: an accepted order is written, its transaction not committed",
                      _unknown_and_absent),
    "after_commit": ("api: the order is committed, the 202 not yet sent", _unknown_and_recovered),
    "after_claim": ("worker: orders were claimed, no handler started", _claimed_but_never_run),
    "before_complete": ("worker: the handler returned, completion not yet written",
                        _handler_ran_again),
    "mid_complete": ("store: the completion is written, its transaction not committed",
                     _handler_ran_again),
}


@dataclass(frozen=True, slots=True)
class CrashPoints:
    rounds: int = 1
    """How many times the point is armed and hit in one run."""
    clients: int = 4
    workers: int = 8
    lease_seconds: float = 1.5
    time_to_hit: float = 20.0
    """Seconds the load may take to reach the point before the round fails."""


SHORT = CrashPoints()
LONG = CrashPoints(rounds=3)
SHAPE = OrderShape(min_duration=0.0, max_duration=0.2)


async def run(point: str, params: CrashPoints = SHORT) -> Report:
    _, expectation = CRASH_POINTS[point]
    async with scenario(f"crash_{point}") as context:
        db = context.sqlite_url()
        server = context.server(
            ServerConfig(db, workers=params.workers, lease_seconds=params.lease_seconds)
        )
        codes = []
        async with under_load(context, params.clients, SHAPE):
            for _ in range(params.rounds):
                if server.running:
                    await server.stop()
                await server.start(fault=point, ready=False)  # it may die before ready
                code = await server.wait_exit(params.time_to_hit)
                codes.append(code)
                if code is None:  # the point was never reached: the check below says so
                    await server.stop()
                else:
                    context.history.fault(f"crash_point:{point}", server.pid)
                await server.start()
                await wait_for_acks(context.history, 20, timeout=10)
        report = await context.finish(db)
        killed = all(code == -signal.SIGKILL for code in codes)
        report.expect("died_at_the_point", killed, codes)
        ok, observed = expectation(report, context)
        report.expect("consequence", ok, observed)
        return finished(report)
