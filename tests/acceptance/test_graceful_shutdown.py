"""SIGTERM on a real server: it refuses new orders (503 + Retry-After) while it drains, exits 0,
and loses nothing: a restart finishes what was queued or released."""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp

from tests.acceptance.processes import (
    Launcher,
    Server,
    accept,
    post_order,
    wait_for_status,
    wait_until_final,
)


async def submit_during_drain(http: aiohttp.ClientSession, server: Server) -> list[str]:
    """Post until the server answers 503; the ids of orders accepted before it noticed."""
    accepted: list[str] = []
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        reply = await post_order(http, server, {"duration": 0.1})
        if reply.status == 503:
            assert int(reply.headers["Retry-After"]) >= 1
            assert reply.headers["Content-Type"].startswith("application/problem+json")
            return accepted
        assert reply.status == 202, reply.body
        accepted.append(reply.body["id"])
        await asyncio.sleep(0.01)
    raise AssertionError("the draining server never answered 503")


async def restart_and_finish(
    launcher: Launcher, http: aiohttp.ClientSession, ids: list[str]
) -> list[dict[str, object]]:
    again = await launcher.serve("--workers", "3")
    finished = await wait_until_final(http, again, [(i, None) for i in ids], within=30)
    assert [order["status"] for order in finished] == ["succeeded"] * len(ids)
    return finished


async def test_sigterm_drains_running_orders_and_exits_0(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    server = await launcher.serve("--workers", "3")
    ids = [await accept(http, server, {"duration": 1.0}) for _ in range(6)]
    await wait_for_status(http, server, ids[0], "running")

    sent = time.monotonic()
    server.send(signal.SIGTERM)
    ids += await submit_during_drain(http, server)
    assert await server.wait_exit(within=25) == 0
    assert time.monotonic() - sent < 25
    await restart_and_finish(launcher, http, ids)


async def test_five_sigterms_in_half_a_second_still_exit_0_and_lose_nothing(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    server = await launcher.serve("--workers", "3")
    ids = [await accept(http, server, {"duration": 1.0}) for _ in range(6)]
    await wait_for_status(http, server, ids[0], "running")

    for _ in range(5):
        server.send(signal.SIGTERM)
        await asyncio.sleep(0.1)
    assert await server.wait_exit(within=25) == 0
    assert server.log_tail(200).count("received again") == 4
    await restart_and_finish(launcher, http, ids)


async def test_orders_outliving_the_drain_timeout_are_released_and_rerun(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    server = await launcher.serve("--workers", "3", "--drain-timeout", "1")
    ids = [await accept(http, server, {"duration": 6.0}) for _ in range(3)]
    for order_id in ids:
        await wait_for_status(http, server, order_id, "running")

    sent = time.monotonic()
    server.send(signal.SIGTERM)
    assert await server.wait_exit(within=10) == 0
    assert time.monotonic() - sent < 5, "the drain must stop waiting after --drain-timeout"
    finished = await restart_and_finish(launcher, http, ids)
    assert all(order["attempts"] == 2 for order in finished)
