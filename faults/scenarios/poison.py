"""Poison orders amid healthy load: one whose handler always raises (retried with backoff, then
failed with its error after exactly max_attempts runs), one whose handler kills its own process
(failed after max_rescues, no crash loop). Healthy orders must keep flowing throughout, and the
healthy orders a self-killing order takes down with it (its neighbours in the other slots) must
still succeed: they die once, then run alone."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from itertools import pairwise

from faults.checker import Report
from faults.client import OrderShape, submit_batch
from faults.history import Answer
from faults.journal import Run
from faults.process import ServerConfig
from faults.scenario import (
    Context,
    finished,
    scenario,
    supervised,
    under_load,
    wait_final,
    wait_for_acks,
)

HEALTHY = OrderShape(min_duration=0.0, max_duration=0.1)
JITTER = 0.1
"""The backoff's proportional jitter (domain.scheduling.retry_delay)."""
BACKOFF_BASE = 1.0
"""skipline's default backoff base (there is no flag for it)."""
SLACK = 1.5
"""Seconds a retry may start later than its backoff: the worker's poll interval plus a claim."""
NEIGHBOUR_SECONDS = 1.0
"""How long the healthy orders submitted just before the self-killing one run: long enough to
be running in the other slots when it starts, so that its first death takes them down."""


@dataclass(frozen=True, slots=True)
class PoisonRaise:
    poison_orders: int = 2
    max_attempts: int = 3
    workers: int = 4
    clients: int = 2


@dataclass(frozen=True, slots=True)
class PoisonKill:
    max_rescues: int = 2
    workers: int = 4
    """Several slots: the poison order's first death also kills the `workers - 1` neighbours
    running beside it, which must then run alone and succeed (docs/reliability.md)."""
    lease_seconds: float = 1.0
    clients: int = 2


RAISE_SHORT = PoisonRaise()
RAISE_LONG = PoisonRaise(poison_orders=5, max_attempts=4)
KILL_SHORT = PoisonKill()
KILL_LONG = PoisonKill(max_rescues=3)


async def run_raise(params: PoisonRaise = RAISE_SHORT) -> Report:
    async with scenario("poison_raise") as context:
        db = context.sqlite_url()
        server = context.server(ServerConfig(
            db, workers=params.workers, handler="faults.handlers:poison",
            flags=("--max-attempts", str(params.max_attempts)),
        ))
        await server.start()
        shape = OrderShape(payload={"poison": "raise"}, expect="failed", max_duration=0.0)
        async with under_load(context, params.clients, HEALTHY) as recorder:
            poison = await submit_batch(recorder, params.poison_orders, shape)
            ids = [s.order_id for s in poison if s.order_id is not None]
            budget = sum(BACKOFF_BASE * 2**i for i in range(params.max_attempts)) + 10
            await wait_final(context.urls(), ids, budget)
        report = await context.finish(db)
        report.expect("poison_acknowledged", len(ids) == params.poison_orders, len(ids))
        _check_retries(report, context, ids, params.max_attempts)
        return finished(report)


def _check_retries(report: Report, context: Context, ids: list[str], max_attempts: int) -> None:
    """Each poison order: exactly max_attempts runs, spaced by the backoff, error kept."""
    orders = {o.id: o for o in context.orders}
    starts = {
        order_id: sorted(r.started for r in context.runs if r.order_id == order_id)
        for order_id in ids
    }
    report.expect("attempts", all(orders[i].attempts == max_attempts for i in ids),
                  sorted({orders[i].attempts for i in ids}))
    report.expect("handler_runs_each", all(len(starts[i]) == max_attempts for i in ids),
                  sorted({len(starts[i]) for i in ids}))
    report.expect("error_kept", all("raised on purpose" in (orders[i].error or "") for i in ids),
                  orders[ids[0]].error if ids else None)
    gaps = [[round(b - a, 2) for a, b in pairwise(starts[i])] for i in ids]
    report.expect("backoff_gaps", all(map(_is_backoff, gaps)), gaps)


def _is_backoff(gaps: list[float]) -> bool:
    """The n-th retry waits base * 2**(n-1), give or take the jitter and a poll interval."""
    return all(
        BACKOFF_BASE * 2**n * (1 - JITTER) - 0.05 <= gap <= BACKOFF_BASE * 2**n * (1 + JITTER)
        + SLACK
        for n, gap in enumerate(gaps)
    )


async def run_kill(params: PoisonKill = KILL_SHORT) -> Report:
    async with scenario("poison_kill") as context:
        db = context.sqlite_url()
        server = context.server(ServerConfig(
            db, workers=params.workers, handler="faults.handlers:poison",
            lease_seconds=params.lease_seconds,
            flags=("--max-rescues", str(params.max_rescues)),
        ))
        await server.start()
        shape = OrderShape(payload={"poison": "kill"}, expect="failed", max_duration=0.0)
        async with supervised(context, server) as deaths, \
                under_load(context, params.clients, HEALTHY) as recorder:
            await wait_for_acks(context.history, 5, timeout=10)
            acked_before = context.history.count(Answer.ACKNOWLEDGED)
            slow = OrderShape(min_duration=NEIGHBOUR_SECONDS, max_duration=NEIGHBOUR_SECONDS)
            beside = await submit_batch(recorder, params.workers - 1, slow)
            neighbours = [s.order_id for s in beside if s.order_id is not None]
            poison = await submit_batch(recorder, 1, shape)
            ids = [s.order_id for s in poison if s.order_id is not None]
            budget = (params.max_rescues + 1) * (params.lease_seconds + 5) + 10
            await wait_final(context.urls(), ids, budget)
            deaths_when_failed = len(deaths)
            await asyncio.sleep(3 * params.lease_seconds + 1)  # a crash loop would show here
            acked_while_poisoned = context.history.count(Answer.ACKNOWLEDGED) - acked_before
        report = await context.finish(db)
        report.expect("poison_acknowledged", len(ids) == 1, len(ids))
        report.expect("deaths", deaths_when_failed == params.max_rescues + 1, deaths_when_failed)
        report.expect("no_crash_loop", len(deaths) == deaths_when_failed, len(deaths))
        report.expect("healthy_orders_flowed", acked_while_poisoned > 0, acked_while_poisoned)
        _check_neighbours(report, context, neighbours, params.workers - 1)
        return finished(report)


def _check_neighbours(report: Report, context: Context, ids: list[str], expected: int) -> None:
    """The poison order's first death took every neighbour with it (each rescued exactly once:
    the fault fired, and never hit them again); each then succeeded (`lost` = 0 says so) in a
    run that overlapped no other run of its process: it ran alone."""
    orders = {o.id: o for o in context.orders}
    rescues = sorted(orders[i].rescues for i in ids if i in orders)
    report.expect("neighbours_killed_once", len(ids) == expected and rescues == [1] * expected,
                  rescues)
    crowded = [i for i in ids if not _last_run_alone(i, context.runs)]
    report.expect("neighbours_ran_alone", not crowded, crowded)


def _last_run_alone(order_id: str, runs: list[Run]) -> bool:
    spans = [(r.started, r.ended, r) for r in runs if r.order_id == order_id and r.ended]
    if not spans:
        return False
    start, end, last = max(spans, key=lambda span: span[0])
    return not any(
        other is not last and other.pid == last.pid and other.started < end
        and (other.ended is None or other.ended > start)
        for other in runs
    )
