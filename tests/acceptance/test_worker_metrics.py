"""A real `skipline worker --metrics-port` process beside a real `serve --no-workers`: after it
ran orders, its /metrics has the handler run times (per kind), failures, retries and dead
letters, under the same metric names as serve's /metrics; the API's GET /workers lists it while
it beats, and forgets it one lease after a SIGKILL."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from skipline.testing import free_port
from tests.acceptance.processes import (
    Launcher,
    PostgresLauncher,
    Server,
    accept,
    auth,
    get_order,
    wait_logged,
    wait_until_final,
)

HANDLERS = '''
import asyncio


async def sleepy_or_broken(order):
    if order.payload.get("broken"):
        raise RuntimeError("broken on purpose")
    await asyncio.sleep(0.05)
    return {"done": True}
'''
LEASE = 1.0


async def scrape(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample(families: dict[str, Any], name: str, family: str | None = None,
           **labels: str) -> float:
    """The value of sample `name` (in family `family`, default the same name) with `labels`."""
    found = [s.value for s in families[family or name].samples
             if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, labels, families[family or name].samples)
    return float(found[0])


async def listed_workers(http: aiohttp.ClientSession, api: Server, key: str) -> list[Any]:
    async with http.get(api.url + "/workers", headers=auth(key)) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
    workers: list[Any] = body["workers"]
    return workers


async def test_a_worker_process_serves_its_metrics_and_is_in_the_registry(
    launcher: Launcher, http: aiohttp.ClientSession, tmp_path: Path,
) -> None:
    (tmp_path / "metrics_handlers.py").write_text(HANDLERS, encoding="utf-8")
    admin = await launcher.add_key("root", "regular", "--admin")
    api = await launcher.serve("--no-workers")
    port = free_port()
    worker = launcher.start(
        "--concurrency", "2", "--handler", "metrics_handlers:sleepy_or_broken",
        "--max-attempts", "2", "--lease-seconds", str(LEASE), "--metrics-port", str(port),
        command="worker")

    ids = [await accept(http, api, {"payload": {"n": n}}) for n in range(3)]
    ids.append(await accept(http, api, {"payload": {"broken": True}}))
    finished = await wait_until_final(http, api, [(i, None) for i in ids], within=30)
    assert [order["status"] for order in finished] == ["succeeded"] * 3 + ["failed"]

    worker_metrics = await scrape(http, f"http://127.0.0.1:{port}/metrics")
    api_metrics = await scrape(http, api.url + "/metrics")
    assert set(worker_metrics) == set(api_metrics), "the same metric names as serve's"
    histogram = "skipline_handler_duration_seconds"
    runs = sample(worker_metrics, histogram + "_count", histogram, kind="default")
    assert runs == 5, "three successes and two failed attempts"
    assert sample(worker_metrics, histogram + "_sum", histogram, kind="default") >= 3 * 0.05
    assert sample(worker_metrics, histogram + "_bucket", histogram, kind="default",
                  le="0.01") <= 2, "the three successes slept 50 ms each"
    for name, expected in (("skipline_handler_failures", 2), ("skipline_order_retries", 1),
                           ("skipline_dead_letters", 1)):
        assert sample(worker_metrics, name + "_total", name, kind="default") == expected, name
    assert sample(worker_metrics, "skipline_orders_pruned_total", "skipline_orders_pruned") == 0
    assert [s for s in api_metrics[histogram].samples] == [], "the API process ran nothing"

    (listed,) = await listed_workers(http, api, admin)
    assert (listed["pid"], listed["kinds"], listed["slots_total"]) == (
        worker.pid, ["default"], 2)

    worker.send(signal.SIGKILL)
    await worker.wait_exit(within=10)
    killed_at = time.monotonic()
    while await listed_workers(http, api, admin):
        assert time.monotonic() - killed_at < 3 * LEASE, "a killed worker stays listed"
        await asyncio.sleep(0.1)


async def test_the_workers_command_lists_the_pools(launcher: Launcher) -> None:
    admin = await launcher.add_key("root", "regular", "--admin")
    user = await launcher.add_key("alice", "vip")
    server = await launcher.serve("--workers", "3")
    url = ("--url", server.url)

    as_json: dict[str, Any] = {"workers": []}
    for _ in range(50):  # the API answers before its pool has signed in
        as_json = json.loads((await launcher.cli("workers", *url, "--key", admin,
                                                 "--json")).stdout)
        if as_json["workers"]:
            break
        await asyncio.sleep(0.1)
    (pool,) = as_json["workers"]
    assert (pool["pid"], pool["kinds"], pool["slots_busy"], pool["slots_total"]) == (
        server.pid, ["default"], 0, 3)
    assert pool["last_heartbeat"].endswith("Z")
    table = (await launcher.cli("workers", *url, "--key", admin)).stdout
    row = next(line for line in table.splitlines() if pool["id"] in line)
    assert str(server.pid) in row and "0/3" in row and "default" in row
    refused = await launcher.cli("workers", *url, "--key", user, check=False)
    assert refused.returncode == 1 and "403" in refused.stderr and "admin" in refused.stderr


async def test_a_metrics_port_in_use_stops_the_worker_before_it_claims(
    launcher: Launcher, http: aiohttp.ClientSession,
) -> None:
    api = await launcher.serve("--no-workers")
    order_id = await accept(http, api, {"duration": 0})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = launcher.start("--metrics-port", str(port), command="worker")
        assert await worker.wait_exit(within=20) == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in worker.log_tail()
    assert (await get_order(http, api, order_id))["status"] == "queued"


@pytest.mark.postgres
async def test_worker_processes_on_postgres_sign_in_and_out(
    postgres_launcher: PostgresLauncher, http: aiohttp.ClientSession,
) -> None:
    admin = await postgres_launcher.add_key("root", "regular", "--admin")
    api = await postgres_launcher.serve("--no-workers")
    first = postgres_launcher.start("--concurrency", "2", command="worker")
    second = postgres_launcher.start("--concurrency", "5", command="worker")
    for worker in (first, second):
        await wait_logged(worker, "skipline worker running")

    listed = await until_listed(http, api, admin, 2)
    assert sorted((w["pid"], w["slots_total"]) for w in listed) == sorted(
        [(first.pid, 2), (second.pid, 5)])
    assert all(w["kinds"] == ["default"] and w["slots_busy"] == 0 for w in listed)

    first.send(signal.SIGTERM)
    assert await first.wait_exit(within=25) == 0
    (left,) = await listed_workers(http, api, admin)
    assert left["pid"] == second.pid, "a graceful stop signs out at once"


async def until_listed(
    http: aiohttp.ClientSession, api: Server, key: str, count: int,
) -> list[Any]:
    for _ in range(100):
        workers = await listed_workers(http, api, key)
        if len(workers) == count:
            return workers
        await asyncio.sleep(0.05)
    raise AssertionError(f"not {count} workers listed: {workers}")
