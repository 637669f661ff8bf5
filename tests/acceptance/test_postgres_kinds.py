"""Kinds across real processes on one PostgreSQL database: an API-only `serve --no-workers`
and two `skipline worker --handlers` processes serving different kinds. Every order runs on a
worker that has its handler, exactly once (each run is logged by the handler itself); a kind
with `concurrency=1` never has two orders running at once in one process; a kind no worker
serves stays queued; a scheduled order runs only once due."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.acceptance.processes import (
    PostgresLauncher,
    accept,
    get_order,
    wait_healthy,
    wait_logged,
    wait_until_final,
)

pytestmark = [pytest.mark.postgres]

TASKS = '''
import asyncio, json, os, time
from skipline import Handlers

RUNS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs.jsonl")
running = {}


def log_run(order, started):
    line = json.dumps({"id": order.id, "kind": order.kind, "pid": os.getpid(),
                       "started": started, "ended": time.time(),
                       "overlap": running[order.kind] > 1})
    with open(RUNS, "a") as runs:
        runs.write(line + "\\n")


async def work(order):
    running[order.kind] = running.get(order.kind, 0) + 1
    started = time.time()
    try:
        await asyncio.sleep(0.02)
        log_run(order, started)
    finally:
        running[order.kind] -= 1
    return {"pid": os.getpid(), "kind": order.kind}


warehouse = Handlers()
warehouse.add("ship", work, concurrency=1)
warehouse.add("pack", work)

office = Handlers()
office.add("receipt", work, concurrency=2)
'''

PER_KIND = 25


def runs(workdir: Path) -> list[dict[str, Any]]:
    path = workdir / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def launcher(tmp_path: Path, postgres_url: str) -> Any:
    (tmp_path / "shop_tasks.py").write_text(TASKS)
    starter = PostgresLauncher(tmp_path, postgres_url)
    try:
        yield starter
    finally:
        starter.stop_all()


async def test_two_workers_serving_different_kinds(launcher: PostgresLauncher) -> None:
    api = launcher.start("--no-workers")
    warehouse = launcher.start(
        "--handlers", "shop_tasks:warehouse", "--concurrency", "4", command="worker")
    office = launcher.start(
        "--handlers", "shop_tasks:office", "--concurrency", "4", command="worker")
    await wait_healthy(api)
    for worker in (warehouse, office):
        await wait_logged(worker, "skipline worker running")
    async with aiohttp.ClientSession() as http:
        ids: dict[str, list[str]] = defaultdict(list)
        for n in range(PER_KIND):
            for kind in ("ship", "pack", "receipt"):
                ids[kind].append(await accept(http, api, {"kind": kind, "payload": {"n": n}}))
        due = time.time() + 1.0
        scheduled = await accept(http, api, {"kind": "pack", "delay": 1.0})
        unserved = await accept(http, api, {"kind": "refund"})
        every = [(order_id, None) for kind in ids for order_id in ids[kind]] + [
            (scheduled, None)]
        orders = await wait_until_final(http, api, every, within=60.0)
        assert all(order["status"] == "succeeded" for order in orders)
        await asyncio.sleep(0.5)
        assert (await get_order(http, api, unserved))["status"] == "queued"

    by_id = {order["id"]: order for order in orders}
    logged = runs(launcher.workdir)
    assert Counter(run["id"] for run in logged) == Counter(list(by_id))  # each exactly once
    pids = {"ship": warehouse.pid, "pack": warehouse.pid, "receipt": office.pid}
    for run in logged:
        assert run["pid"] == pids[run["kind"]], run
        assert by_id[run["id"]]["kind"] == run["kind"]
        assert by_id[run["id"]]["result"] == {"pid": run["pid"], "kind": run["kind"]}
    ship_runs = sorted((r for r in logged if r["kind"] == "ship"), key=lambda r: r["started"])
    assert not any(run["overlap"] for run in ship_runs)
    for earlier, later in pairwise(ship_runs):
        assert later["started"] >= earlier["ended"] - 0.001, (earlier, later)
    assert any(run["overlap"] for run in logged if run["kind"] == "pack"), (
        "pack is uncapped: with 4 slots some of its runs overlap")
    scheduled_run = next(run for run in logged if run["id"] == scheduled)
    assert scheduled_run["started"] >= due - 0.05
