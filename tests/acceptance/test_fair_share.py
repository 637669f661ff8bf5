"""Fair share with real processes: `skipline serve --no-workers` takes one customer's big
backlog, then a few orders of two other customers, then VIP orders; one
`skipline worker --concurrency 1` then runs them all. VIP first; the small customers are not
held up behind the big one; FIFO inside every customer."""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime
from typing import Any

import aiohttp

from tests.acceptance.processes import Launcher, accept

BIG = 200
SMALL = 5
VIPS = 2


async def all_orders(http: aiohttp.ClientSession, url: str, admin: str) -> list[dict[str, Any]]:
    async with http.get(f"{url}/orders?limit=500",
                        headers={"Authorization": f"Bearer {admin}"}) as response:
        assert response.status == 200, await response.text()
        page: dict[str, Any] = await response.json()
    return list(page["orders"])


async def test_small_customers_are_served_within_the_first_twenty_despite_a_big_backlog(
    launcher: Launcher, http: aiohttp.ClientSession,
) -> None:
    shop = await launcher.add_key("shop", "regular", "--customers")
    solo = await launcher.add_key("solo", "regular")
    vip = await launcher.add_key("vip", "vip")
    admin = await launcher.add_key("ops", "regular", "--admin")
    api = await launcher.serve("--no-workers")
    submissions: list[tuple[str, dict[str, Any], str]] = (
        [("big", {"customer": "big"}, shop)] * BIG
        + [("small-a", {"customer": "small-a"}, shop)] * SMALL
        + [("solo", {}, solo)] * SMALL
        + [("vip", {}, vip)] * VIPS
    )
    for n, (who, extra, key) in enumerate(submissions):
        await accept(http, api, {"payload": {"who": who, "n": n}, **extra}, key)

    worker = launcher.start("--concurrency", "1", command="worker")
    try:
        found: list[dict[str, Any]] = []
        for _ in range(300):
            found = await all_orders(http, api.url, admin)
            if all(order["status"] == "succeeded" for order in found):
                break
            await asyncio.sleep(0.2)
    finally:
        worker.send(signal.SIGTERM)
        await worker.wait_exit(within=25)

    orders = found
    assert len(orders) == BIG + 2 * SMALL + VIPS
    assert {order["status"] for order in orders} == {"succeeded"}, worker.log_tail()
    by_start = sorted(orders, key=lambda o: datetime.fromisoformat(o["started_at"]))
    who = [order["payload"]["who"] for order in by_start]
    assert who[:VIPS] == ["vip"] * VIPS
    small_places = [place for place, name in enumerate(who) if name in ("small-a", "solo")]
    assert len(small_places) == 2 * SMALL
    assert max(small_places) < 20, f"small customers started at places {small_places}"
    for name in ("big", "small-a", "solo", "vip"):
        numbers = [o["payload"]["n"] for o in by_start if o["payload"]["who"] == name]
        assert numbers == sorted(numbers), f"{name}'s orders did not start in FIFO order"
    assert {o["customer"] for o in by_start if o["payload"]["who"] == "big"} == {"big"}
    assert {o["customer"] for o in by_start if o["payload"]["who"] == "solo"} == {None}

