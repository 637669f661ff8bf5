"""A second Ctrl-C is a fast exit: a real process, real signals. It ends within seconds with
exit code 130, the running orders' leases released (a restart runs them at once, not after
their lease), nothing lost. Repeated SIGTERMs stay a graceful drain (test_graceful_shutdown)."""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp

from tests.acceptance.processes import (
    Launcher,
    Server,
    accept,
    wait_for_status,
    wait_until_final,
)

LONG_LEASE = ("--lease-seconds", "120")
"""Far longer than the test: an order that runs again soon was released, not expired."""


async def running_orders(http: aiohttp.ClientSession, server: Server) -> list[str]:
    ids = [await accept(http, server, {"duration": 60}) for _ in range(3)]
    ids.append(await accept(http, server, {"duration": 0}))  # stays queued behind them
    for order_id in ids[:3]:
        await wait_for_status(http, server, order_id, "running")
    return ids


async def assert_fast_exit(server: Server, first: signal.Signals) -> None:
    server.send(first)
    await asyncio.sleep(0.3)
    sent = time.monotonic()
    server.send(signal.SIGINT)
    assert await server.wait_exit(within=10) == 130
    assert time.monotonic() - sent < 5, "a fast exit must not wait for the drain"
    log = server.log_tail(200)
    assert "exiting at once" in log and "released 3 of 3 lease(s)" in log
    assert "stopped at once (second Ctrl-C): 4 order(s) remain queued" in log


async def rerun_at_once(launcher: Launcher, http: aiohttp.ClientSession, ids: list[str]) -> None:
    """The released orders start again well before their 120 s lease would have expired."""
    again = await launcher.serve("--workers", "4", *LONG_LEASE)
    for order_id in ids[:3]:
        order = await wait_for_status(http, again, order_id, "running", within=10)
        assert order["attempts"] == 2
    finished = await wait_until_final(http, again, [(ids[3], None)], within=10)
    assert finished[0]["status"] == "succeeded"


async def test_a_second_ctrl_c_exits_at_once_and_releases_the_leases(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    server = await launcher.serve("--workers", "3", "--drain-timeout", "60", *LONG_LEASE)
    ids = await running_orders(http, server)
    await assert_fast_exit(server, signal.SIGINT)
    assert "press Ctrl-C again to exit at once" in server.log_tail(200)
    await rerun_at_once(launcher, http, ids)


async def test_ctrl_c_after_a_sigterm_is_a_fast_exit_too(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    server = await launcher.serve("--workers", "3", "--drain-timeout", "60", *LONG_LEASE)
    ids = await running_orders(http, server)
    await assert_fast_exit(server, signal.SIGTERM)
    await rerun_at_once(launcher, http, ids)


async def test_a_sigterm_after_ctrl_c_does_not_cut_the_drain(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    server = await launcher.serve("--workers", "1", "--drain-timeout", "60")
    order_id = await accept(http, server, {"duration": 1.5})
    await wait_for_status(http, server, order_id, "running")
    server.send(signal.SIGINT)
    await asyncio.sleep(0.2)
    server.send(signal.SIGTERM)
    assert await server.wait_exit(within=20) == 0
    assert "SIGTERM received again; already shutting down, ignored" in server.log_tail(200)
    assert "order(s) still running" not in server.log_tail(200)
