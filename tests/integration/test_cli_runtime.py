"""The runtime behind `skipline serve`, in process: run() until its shutdown event, and
skipline_context() in a user's own aiohttp application. Real sockets, real stores."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from skipline.api import SERVICE
from skipline.config import Settings
from skipline.domain.models import Status
from skipline.runtime import (
    POOL,
    display_url,
    open_ready_store,
    run,
    skipline_app,
    skipline_context,
)
from skipline.testing import free_port


async def wait_healthy(session: aiohttp.ClientSession, url: str, task: asyncio.Task[int]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert not task.done(), f"run() ended early with {task.result()}"
        try:
            async with session.get(url + "/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("no /healthz within 10 s")


async def poll_order(
    session: aiohttp.ClientSession, url: str, order_id: str, status: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        async with session.get(f"{url}/orders/{order_id}") as response:
            order: dict[str, Any] = await response.json()
        if order["status"] == status or time.monotonic() > deadline:
            return order
        await asyncio.sleep(0.05)


async def test_run_serves_and_works_until_shutdown_then_returns_0(tmp_path: Path) -> None:
    settings = Settings(db=f"sqlite:///{tmp_path / 'run.db'}", port=free_port(), workers=2)
    url = f"http://127.0.0.1:{settings.port}"
    before = signal.getsignal(signal.SIGTERM)
    shutdown = asyncio.Event()
    task = asyncio.create_task(run(settings, api=True, workers=True, shutdown=shutdown))
    async with aiohttp.ClientSession() as session:
        await wait_healthy(session, url, task)
        async with session.post(url + "/orders", json={"duration": 0.5}) as response:
            assert response.status == 202
            order_id = (await response.json())["id"]
        assert (await poll_order(session, url, order_id, "running"))["status"] == "running"
        shutdown.set()
        await asyncio.sleep(0.1)
        async with session.post(url + "/orders", json={}) as response:
            assert response.status == 503, "the site stays up, refusing orders, while draining"
            assert "Retry-After" in response.headers
        assert await asyncio.wait_for(task, 10) == 0
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(url + "/healthz")
    assert signal.getsignal(signal.SIGTERM) == before
    assert await stored_status(settings, order_id) is Status.SUCCEEDED, "drained, not dropped"


async def test_run_prunes_finished_orders_and_counts_them_in_metrics(tmp_path: Path) -> None:
    """The pool that `run` starts prunes what outlived its retention, and the API's /metrics
    counts it: one registry for both."""
    settings = Settings(db=f"sqlite:///{tmp_path / 'run.db'}", port=free_port(), workers=1,
                        retention=0.2)
    url = f"http://127.0.0.1:{settings.port}"
    shutdown = asyncio.Event()
    task = asyncio.create_task(run(settings, api=True, workers=True, shutdown=shutdown))
    try:
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, url, task)
            async with session.post(url + "/orders", json={}) as response:
                order_id = (await response.json())["id"]
            deadline = time.monotonic() + 10
            while True:
                async with session.get(f"{url}/orders/{order_id}") as response:
                    if response.status == 404:
                        break
                assert time.monotonic() < deadline, "the order was never pruned"
                await asyncio.sleep(0.05)
            async with session.get(url + "/metrics") as response:
                assert "skipline_orders_pruned_total 1.0" in await response.text()
    finally:
        shutdown.set()
        assert await asyncio.wait_for(task, 10) == 0


async def stored_status(settings: Settings, order_id: str) -> Status | None:
    store = await open_ready_store(settings)
    try:
        order = await store.get(order_id)
        return None if order is None else order.status
    finally:
        await store.close()


async def test_run_returns_1_when_the_store_cannot_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings = Settings(db=f"sqlite:///{blocker / 'x.db'}", port=free_port())
    assert await run(settings, api=True, workers=True) == 1
    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].startswith("cannot open the store")


async def test_skipline_context_in_a_users_own_app(tmp_path: Path) -> None:
    settings = Settings(db=f"sqlite:///{tmp_path / 'lib.db'}", workers=1)

    async def buy(request: web.Request) -> web.Response:
        order = await request.app[SERVICE].submit_order(payload={"sku": 1})
        return web.json_response({"id": order.id})

    app = web.Application()
    app.cleanup_ctx.append(skipline_context(settings))
    app.router.add_post("/buy", buy)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as session, session.post(
            f"http://127.0.0.1:{port}/buy"
        ) as response:
            order_id = (await response.json())["id"]
        service = app[SERVICE]
        assert app[POOL].slots == 1
        deadline = time.monotonic() + 10
        while await stored_status(settings, order_id) is not Status.SUCCEEDED:
            assert time.monotonic() < deadline, "the pool never processed the order"
            await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
    assert service.accepting is False, "cleanup stops accepting before it drains"


def test_display_url_hides_only_the_password() -> None:
    assert display_url("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert display_url("postgresql://h/db") == "postgresql://h/db"
    assert display_url("sqlite:///./skipline.db") == "sqlite:///./skipline.db"


async def test_skipline_app_mounted_in_a_users_own_app(tmp_path: Path) -> None:
    """The library's promise (README, "Using it as a library"): the routes mounted into the
    user's application under a prefix, the store and the pool started and stopped with it."""
    settings = Settings(db=f"sqlite:///{tmp_path / 'mounted.db'}", workers=1)

    async def home(request: web.Request) -> web.Response:
        return web.Response(text="the user's own page")

    app = web.Application()
    app.router.add_get("/", home)
    queue = skipline_app(settings)
    app.add_subapp("/queue/", queue)
    runner = web.AppRunner(app)
    await runner.setup()
    base = f"http://127.0.0.1:{free_port()}"
    await web.TCPSite(runner, "127.0.0.1", int(base.rsplit(":", 1)[1])).start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(base + "/") as response:
                assert await response.text() == "the user's own page"
            async with session.post(base + "/queue/orders", json={"payload": {"sku": 7}}) as reply:
                assert reply.status == 202
                assert reply.headers["Location"].startswith("/queue/orders/")
                order_id = (await reply.json())["id"]
            deadline = time.monotonic() + 10
            while True:
                async with session.get(f"{base}/queue/orders/{order_id}") as response:
                    assert response.status == 200
                    if (await response.json())["status"] == "succeeded":
                        break
                assert time.monotonic() < deadline, "the mounted app's pool never ran the order"
                await asyncio.sleep(0.05)
            async with session.get(base + "/queue/readyz") as response:
                assert response.status == 200
        service = queue[SERVICE]
        assert queue[POOL].slots == 1
    finally:
        await runner.cleanup()
    assert service.accepting is False, "cleanup stops accepting before it drains"
    assert await stored_status(settings, order_id) is Status.SUCCEEDED
