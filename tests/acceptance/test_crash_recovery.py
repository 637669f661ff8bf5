"""SIGKILL a real server with acknowledged orders queued and running: a restart on the same
database finishes every one of them (expired leases return to the queue)."""

from __future__ import annotations

import signal

import aiohttp

from tests.acceptance.processes import Launcher, accept, wait_for_status, wait_until_final

LEASE = ("--lease-seconds", "2")


async def test_every_acknowledged_order_succeeds_after_sigkill_and_restart(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    first = await launcher.serve("--workers", "3", *LEASE)
    ids = [await accept(http, first, {"duration": 1.0, "payload": {"n": n}}) for n in range(12)]
    await wait_for_status(http, first, ids[0], "running")

    first.send(signal.SIGKILL)
    assert await first.wait_exit(within=10) == -signal.SIGKILL

    second = await launcher.serve("--workers", "3", *LEASE)
    finished = await wait_until_final(http, second, [(i, None) for i in ids], within=60)
    assert [order["status"] for order in finished] == ["succeeded"] * 12
    rerun = [order for order in finished if order["attempts"] >= 2]
    assert rerun, "the orders running at the kill must have run again"
    assert ids[0] in {order["id"] for order in rerun}
