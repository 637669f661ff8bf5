"""Webhook deliveries are durable: `skipline serve` SIGKILLed while deliveries are pending (the
receiver kept failing) delivers every one of them after a restart, signed; none is lost. On
SQLite and on PostgreSQL (the pending row is written by each database's trigger)."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest

from skipline.signing import verify
from tests.acceptance.processes import Launcher, Server, accept, get_order, wait_for_status
from tests.callback_receiver import receiving

SECRET = "acceptance-secret"
ORDERS = 6


def write_config(launcher: Launcher, receiver_url: str) -> None:
    (launcher.workdir / "skipline.toml").write_text(f"""
[callbacks]
allow = ["{receiver_url}/"]
secret = "{SECRET}"
backoff_base = 0.2
backoff_max = 0.5
""", encoding="utf-8")


@pytest.fixture(params=[
    pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres),
])
def any_launcher(request: pytest.FixtureRequest) -> Launcher:
    """The SQLite launcher, or the PostgreSQL one."""
    name = "launcher" if request.param == "sqlite" else "postgres_launcher"
    found: Launcher = request.getfixturevalue(name)
    return found


async def test_pending_deliveries_survive_sigkill_and_are_sent_after_restart(
    any_launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    launcher = any_launcher
    async with receiving([500]) as receiver:
        write_config(launcher, receiver.url)
        server = await launcher.serve("--workers", "2")
        ids = [await accept(http, server, {"payload": {"n": n},
                                           "callback_url": f"{receiver.url}/hook/{n}"})
               for n in range(ORDERS)]
        for order_id in ids:
            await wait_for_status(http, server, order_id, "succeeded")
        await receiver.until(lambda got: len({r.path for r in got}) == ORDERS, within=30)
        pending = [(await get_order(http, server, order_id))["callback"] for order_id in ids]
        assert {callback["status"] for callback in pending} == {"pending"}

        server.send(signal.SIGKILL)
        await server.wait_exit(within=10)
        receiver.statuses[:] = [200]
        refused = len(receiver.received)
        restarted = await launcher.serve("--workers", "1")
        for order_id in ids:
            await _delivered(http, restarted, order_id)

    accepted = receiver.received[refused:]
    assert {r.path for r in accepted} == {f"/hook/{n}" for n in range(ORDERS)}
    assert all(verify(SECRET, r.body, r.headers["Skipline-Signature"]) for r in accepted)


async def _delivered(http: aiohttp.ClientSession, server: Server, order_id: str) -> None:
    async with asyncio.timeout(30):
        while True:
            order = await get_order(http, server, order_id)
            if order["callback"]["status"] == "delivered":
                return
            await asyncio.sleep(0.1)
