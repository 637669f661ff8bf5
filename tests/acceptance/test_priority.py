"""A real `skipline serve --workers 1`: VIP orders skip the line, FIFO within a tier."""

from __future__ import annotations

from datetime import datetime

import aiohttp

from tests.acceptance.processes import (
    Launcher,
    accept,
    get_order,
    wait_for_status,
    wait_until_final,
)

QUICK = 0.05
"""Seconds each queued order sleeps: long enough for distinct start times, short for the test."""


async def test_vip_orders_start_first_then_everyone_else_in_arrival_order(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    vip = await launcher.add_key("vip-customer", "vip")
    regular = await launcher.add_key("regular-customer", "regular")
    server = await launcher.serve("--workers", "1")
    blocker = await accept(http, server, {"duration": 1.5})
    await wait_for_status(http, server, blocker, "running")

    keys = {"vip": vip, "regular": regular, "anonymous": None}
    arrival = ["regular", "anonymous", "vip", "regular", "regular", "vip", "anonymous",
               "regular", "vip", "regular"]
    posted: list[tuple[str, str, str | None]] = []
    for n, who in enumerate(arrival):
        body = {"duration": QUICK, "payload": {"who": who, "n": n}}
        posted.append((who, await accept(http, server, body, keys[who]), keys[who]))
    still = await get_order(http, server, blocker)
    assert still["status"] == "running", "all ten must queue up while the blocker runs"

    finished = await wait_until_final(
        http, server, [(order_id, key) for _, order_id, key in posted], within=30
    )
    assert {order["status"] for order in finished} == {"succeeded"}
    by_start = sorted(finished, key=lambda order: datetime.fromisoformat(order["started_at"]))
    vip_first = [order_id for who, order_id, _ in posted if who == "vip"]
    then_rest = [order_id for who, order_id, _ in posted if who != "vip"]
    assert [order["id"] for order in by_start] == vip_first + then_rest
    assert {order["tier"] for order in by_start[:3]} == {"vip"}
    assert {order["tier"] for order in by_start[3:]} == {"regular"}
    first_start = datetime.fromisoformat(by_start[0]["started_at"])
    blocker_end = datetime.fromisoformat((await get_order(http, server, blocker))["finished_at"])
    assert first_start >= blocker_end, "one worker: nothing starts before the blocker ends"
