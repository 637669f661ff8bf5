"""`GET /orders/{id}?wait=S` against real `skipline` processes: answered as soon as a worker
finishes the order, and on PostgreSQL when the worker is another process than the one holding
the waiting request (LISTEN/NOTIFY)."""

from __future__ import annotations

import time

import aiohttp
import pytest

from tests.acceptance.processes import (
    Launcher,
    PostgresLauncher,
    Server,
    accept,
    wait_healthy,
    wait_logged,
)


async def waited(http: aiohttp.ClientSession, server: Server, order_id: str, seconds: float,
                 ) -> tuple[dict[str, object], float]:
    started = time.monotonic()
    async with http.get(f"{server.url}/orders/{order_id}?wait={seconds:g}") as response:
        assert response.status == 200, await response.text()
        body: dict[str, object] = await response.json()
    return body, time.monotonic() - started


async def test_wait_answers_when_the_worker_finishes(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    server = await launcher.serve("--workers", "2")
    order_id = await accept(http, server, {"duration": 0.5})

    order, elapsed = await waited(http, server, order_id, 30)

    assert order["status"] == "succeeded"
    assert elapsed < 5.0


async def test_wait_runs_out_with_the_order_still_running(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    server = await launcher.serve("--workers", "1")
    order_id = await accept(http, server, {"duration": 10})

    order, elapsed = await waited(http, server, order_id, 1)

    assert order["status"] in ("queued", "running")
    assert 0.9 <= elapsed < 4.0


@pytest.mark.postgres
async def test_wait_is_woken_by_a_worker_in_another_process(
    postgres_launcher: PostgresLauncher, http: aiohttp.ClientSession
) -> None:
    submitter = postgres_launcher.start("--no-workers")
    waiter = postgres_launcher.start("--no-workers")
    worker = postgres_launcher.start("--concurrency", "1", command="worker")
    for api in (submitter, waiter):
        await wait_healthy(api)
    await wait_logged(worker, "skipline worker running")
    order_id = await accept(http, submitter, {"duration": 1.5})

    order, elapsed = await waited(http, waiter, order_id, 30)

    assert order["status"] == "succeeded"
    assert elapsed >= 0.5, "the order was final before the wait began: nothing was tested"
    assert elapsed < 5.0, "the waiting process was not woken by the worker's notification"
