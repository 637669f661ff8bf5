"""`skipline bench`: load a running server and report what happened. It sends --orders POST
/orders over --connections connections of one session, then (with --wait) polls the accepted
orders until each one is final. Every order is sent exactly once: a 503 or 429 is counted as
a refusal and that order is not resent, so the offered load is what was asked for and the run
ends without waiting out a Retry-After. The whole run is bounded by --timeout."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass

import aiohttp
import click
from rich.console import Console

from skipline.cli.bench_progress import PIPED_EVERY, Progress
from skipline.cli.bench_report import summarise, table
from skipline.cli.bench_tally import BACKPRESSURE, Outcomes, Plan, Tally
from skipline.cli.errors import Failure
from skipline.cli.http import REQUEST_TIMEOUT, client_options, describe, unreachable
from skipline.cli.options import examples, option
from skipline.domain.models import MAX_DURATION

POLL_INTERVALS = (0.2, 1.0)
"""Pause between polling rounds (seconds): the shortest after a round that saw orders finish,
doubling up to the longest while none do, so a long wait does not load the server it measures.
The figures come from the orders' own times, so the polling rate does not change them."""
JSON_CONTENT = {"Content-Type": "application/json"}


@click.command(epilog=examples(
    "skipline bench                                   # 1000 orders, 16 connections",
    "skipline bench --orders 2000 --duration 0.01 --connections 32",
    "skipline bench --key \"$KEY\" --user-type vip --no-wait",
    "skipline bench --json --no-progress > run.json",
))
@client_options
@option("--orders", type=click.IntRange(min=1), default=1000, help="Orders to submit.")
# Not --concurrency: every flag reads SKIPLINE_<FLAG>, and SKIPLINE_CONCURRENCY is the worker's.
@option("--connections", "concurrency", type=click.IntRange(min=1), default=16,
        help="Requests in flight at once, one connection each.")
@option("--duration", type=click.FloatRange(min=0, max=MAX_DURATION), default=0.0,
        metavar="SECONDS", help="Simulated work per order (the 'simulate' handler sleeps it).")
@option("--user-type", default=None, metavar="TIER",
        help="Ask for a tier (your key's own or a worse one).")
@click.option("--wait/--no-wait", default=True, envvar="SKIPLINE_WAIT", show_envvar=True,
              show_default=True, help="Then poll until every accepted order is final and "
              "report the end-to-end rate.")
@option("--timeout", type=click.FloatRange(min=0, min_open=True), default=120.0,
        metavar="SECONDS", help="Bound on the whole run; whatever is not done by then is "
        "reported and the exit code is 1.")
@option("--json", "as_json", is_flag=True, default=False,
        help="Print one JSON object instead of a table.")
@click.option("--progress/--no-progress", default=True, envvar="SKIPLINE_PROGRESS",
              show_envvar=True, show_default=True,
              help="Progress on stderr: one line updated in place in a terminal, a line "
                   f"every {PIPED_EVERY:g} s into a file or pipe.")
def bench(
    url: str, key: str | None, orders: int, concurrency: int, duration: float,
    user_type: str | None, wait: bool, timeout: float, as_json: bool, progress: bool,
) -> None:
    """Load a running server with orders and report rates, answers, latencies and outcomes.

    Sends --orders POST /orders over --connections connections. Each order is sent once: a 503
    or 429 is counted as a refusal, not resent. With --wait it then polls every accepted order
    until it is final.

    Exits 1 when the server cannot be reached or an order is unaccounted for: not sent, not
    answered, answered other than 202, 503 or 429, lost, or not final within --timeout."""
    plan = Plan(url=url.rstrip("/"), orders=orders, concurrency=concurrency, duration=duration,
                user_type=user_type, wait=wait, timeout=timeout)
    tally = Tally(plan)
    shown = Progress(tally, sys.stderr, sys.stderr.isatty()) if progress else None
    asyncio.run(run(tally, key, shown))
    if tally.submissions.sent == 0 and tally.stop_reason:
        raise Failure(tally.stop_reason)
    summary = summarise(tally)
    if as_json:
        click.echo(summary.to_json())
    else:
        Console().print(table(summary))
    if not summary.ok:
        raise Failure("; ".join(summary.problems))


async def run(tally: Tally, key: str | None, progress: Progress | None = None) -> None:
    """Submit, then wait, all within one deadline; the tally holds what was seen either way.
    `progress`, when given, is shown meanwhile."""
    shower = asyncio.create_task(progress.show()) if progress else None
    try:
        await run_plan(tally, key)
    finally:
        if shower is not None and progress is not None:
            shower.cancel()
            await asyncio.wait({shower})
            progress.done()


async def run_plan(tally: Tally, key: str | None) -> None:
    plan = tally.plan
    deadline = asyncio.get_running_loop().time() + plan.timeout
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=plan.concurrency),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
        headers={"Authorization": f"Bearer {key}"} if key else None,
    ) as session:
        await within(deadline, submit_all(session, tally), tally, "submitting")
        if plan.wait:
            tally.outcomes = Outcomes.expecting(list(tally.submissions.accepted))
            if tally.stop_reason is None:
                await within(deadline, wait_all(session, tally), tally, "waiting for orders")


async def within(deadline: float, work: Awaitable[None], tally: Tally, doing: str) -> None:
    try:
        async with asyncio.timeout_at(deadline):
            await work
    except TimeoutError:
        tally.stop(f"--timeout {tally.plan.timeout:g} s reached while {doing}")


# --- submitting -----------------------------------------------------------------------------
@dataclass
class Tickets:
    """Orders still to send, shared by the senders."""

    left: int

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


async def submit_all(session: aiohttp.ClientSession, tally: Tally) -> None:
    tickets = Tickets(tally.plan.orders)
    body = tally.plan.order_body()
    senders = (send(session, tally, body, tickets) for _ in range(tally.plan.concurrency))
    await asyncio.gather(*senders)


async def send(
    session: aiohttp.ClientSession, tally: Tally, body: bytes, tickets: Tickets
) -> None:
    """One connection's share: POST after POST until the orders run out or the run stops."""
    while tally.stop_reason is None and tickets.take():
        await post_order(session, tally, body)


async def post_order(session: aiohttp.ClientSession, tally: Tally, body: bytes) -> None:
    """POST one order and count its answer. A 4xx other than 429 stops the run: every order
    has the same body and key, so all would get the same answer."""
    submissions = tally.submissions
    started = time.perf_counter()
    submissions.sending(started)
    try:
        async with session.post(tally.plan.url + "/orders", data=body,
                                headers=JSON_CONTENT) as response:
            answer = await response.read()
    except aiohttp.ClientConnectorError as exc:
        tally.stop(unreachable(tally.plan.url, exc))  # not sent: the ticket counts as unsent
        return
    except (aiohttp.ClientError, TimeoutError) as exc:
        submissions.no_answer(describe(exc))
        return
    except asyncio.CancelledError:
        submissions.no_answer("cut short by --timeout")
        raise
    now = time.perf_counter()
    submissions.answered(response.status, answer, now - started, now)
    if 400 <= response.status < 500 and str(response.status) not in BACKPRESSURE:
        tally.stop(f"stopped at a {response.status}: every order would get the same answer")


# --- waiting --------------------------------------------------------------------------------
async def wait_all(session: aiohttp.ClientSession, tally: Tally) -> None:
    outcomes = tally.outcomes
    assert outcomes is not None
    shortest, longest = POLL_INTERVALS
    pause = shortest
    while outcomes.pending and tally.stop_reason is None:
        before = len(outcomes.pending)
        await poll_round(session, tally, outcomes)
        pause = shortest if len(outcomes.pending) < before else min(2 * pause, longest)
        if outcomes.pending:
            await asyncio.sleep(pause)


async def poll_round(session: aiohttp.ClientSession, tally: Tally, outcomes: Outcomes) -> None:
    """GET the pending orders oldest first, --connections at a time, and end the round at a
    batch in which none had finished: orders finish roughly in acceptance order, so a long
    backlog costs a batch per round rather than a GET per order."""
    pending = list(outcomes.pending)
    size = tally.plan.concurrency
    for start in range(0, len(pending), size):
        batch = pending[start : start + size]
        await asyncio.gather(*(poll_order(session, tally, outcomes, each) for each in batch))
        if tally.stop_reason or all(each in outcomes.pending for each in batch):
            return


async def poll_order(
    session: aiohttp.ClientSession, tally: Tally, outcomes: Outcomes, order_id: str
) -> None:
    try:
        async with session.get(f"{tally.plan.url}/orders/{order_id}") as response:
            body = await response.read()
    except aiohttp.ClientConnectorError as exc:
        tally.stop(unreachable(tally.plan.url, exc))
        return
    except (aiohttp.ClientError, TimeoutError) as exc:
        outcomes.last_error = describe(exc)  # still pending: asked again next round
        return
    outcomes.observed(order_id, response.status, body)
