"""`skipline serve --no-workers` and `skipline worker` as separate processes on one database:
the API process only accepts, the worker process does the work and drains on SIGTERM."""

from __future__ import annotations

import asyncio
import signal

import aiohttp

from tests.acceptance.processes import (
    Launcher,
    accept,
    get_order,
    wait_until_final,
)


async def test_api_only_server_and_separate_worker_process(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    api = await launcher.serve("--no-workers")
    ids = [await accept(http, api, {"duration": 0.2, "payload": {"n": n}}) for n in range(4)]
    await asyncio.sleep(0.5)
    statuses = [(await get_order(http, api, i))["status"] for i in ids]
    assert statuses == ["queued"] * 4, "an API-only server must not process orders"

    worker = launcher.start("--concurrency", "2", command="worker")
    finished = await wait_until_final(http, api, [(i, None) for i in ids], within=30)
    assert [order["status"] for order in finished] == ["succeeded"] * 4
    assert "skipline worker running" in worker.log_tail(200)

    worker.send(signal.SIGTERM)
    assert await worker.wait_exit(within=25) == 0
    api.send(signal.SIGTERM)
    assert await api.wait_exit(within=25) == 0
