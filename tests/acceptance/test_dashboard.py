"""The live dashboard (`GET /`) in a real headless Chromium against a real `skipline serve`:
what a person sees matches /stats, the page keeps itself up to date without a reload, logs no
error, and asks nothing of any host but the server."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from typing import Any

import aiohttp
import pytest
from playwright.async_api import ViewportSize, expect

from tests.acceptance.browser import WatchedPage, watched_page
from tests.acceptance.processes import Launcher, Server, accept, auth, wait_for_status

COUNTS = ("queued", "running", "succeeded", "failed", "cancelled")
BLOCKER_SECONDS = 6.0
"""How long the two orders that occupy both workers run: the window where the page is still."""
ORDER_TIMEOUT = 8.0
"""Handler timeout: the blockers finish within it, the doomed order does not and fails."""
SCREENSHOT = "/tmp/dashboard.png"
GONE_SCREENSHOT = "/tmp/dashboard-unreachable.png"
PHONE_SCREENSHOT = "/tmp/dashboard-phone.png"
PHONE: ViewportSize = {"width": 390, "height": 844}
PAGE_SECONDS = 10.0
"""The page polls every 2 s; it must show a new state within this many seconds."""

READ_TABLE = """() => {
  const headers = [...document.querySelectorAll("thead th")].map((th) => th.innerText.trim());
  return [...document.querySelectorAll("#tiers tr")].map((row) =>
    Object.fromEntries([...row.cells].map((td, i) => [headers[i], td.innerText.trim()])));
}"""


async def read_stats(http: aiohttp.ClientSession, server: Server) -> dict[str, Any]:
    async with http.get(server.url + "/stats") as response:
        assert response.status == 200
        stats: dict[str, Any] = await response.json()
        return stats


async def read_page(watched: WatchedPage) -> dict[str, Any]:
    """The tier table and the summary as the user reads them (visible text only)."""
    rows = await watched.page.evaluate(READ_TABLE)
    summary = {name: await watched.page.inner_text(f"#{name}") for name in ("queued", "running")}
    return {"tiers": {row["tier"]: {c: row[c] for c in COUNTS} for row in rows}, **summary}


def as_shown(stats: dict[str, Any]) -> dict[str, Any]:
    """What read_page must return for these stats."""
    tiers = stats["tiers"]
    return {
        "tiers": {name: {c: str(tier[c]) for c in COUNTS} for name, tier in tiers.items()},
        "queued": str(sum(tier["queued"] for tier in tiers.values())),
        "running": str(sum(tier["running"] for tier in tiers.values())),
    }


async def wait_for_page(watched: WatchedPage, expected: dict[str, Any], within: float) -> None:
    """Wait, without reloading, until the page shows `expected`; fail with what it showed."""
    deadline = time.monotonic() + within
    shown = await read_page(watched)
    while shown != expected:
        if time.monotonic() > deadline:
            pytest.fail(f"after {within} s the page shows {shown}, /stats says {expected}")
        await asyncio.sleep(0.2)
        shown = await read_page(watched)


async def wait_for_stats(
    http: aiohttp.ClientSession, server: Server, done: int, within: float
) -> dict[str, Any]:
    """/stats once nothing is queued or running and `done` orders are final."""
    deadline = time.monotonic() + within
    while True:
        stats = await read_stats(http, server)
        tiers = stats["tiers"].values()
        final = sum(t["succeeded"] + t["failed"] + t["cancelled"] for t in tiers)
        if final == done and not any(t["queued"] or t["running"] for t in tiers):
            return stats
        if time.monotonic() > deadline:
            pytest.fail(f"orders not all final after {within} s: {stats}\n" + server.log_tail())
        await asyncio.sleep(0.2)


async def fill_the_queue(launcher: Launcher, http: aiohttp.ClientSession, server: Server) -> None:
    """Two regular orders running; 3 VIP and 5 regular queued behind them; one cancelled."""
    vip = await launcher.add_key("vip-customer", "vip")
    blockers = [await accept(http, server, {"duration": BLOCKER_SECONDS}) for _ in range(2)]
    for blocker in blockers:
        await wait_for_status(http, server, blocker, "running")
    for n in range(3):
        await accept(http, server, {"duration": 0.05, "payload": {"vip": n}}, vip)
    for n in range(4):
        await accept(http, server, {"duration": 0.05, "payload": {"regular": n}})
    await accept(http, server, {"duration": 60, "payload": {"doomed": True}})
    cancelled = await accept(http, server, {"payload": {"changed my mind": True}})
    async with http.delete(f"{server.url}/orders/{cancelled}", headers=auth(None)) as response:
        assert response.status == 200, await response.text()


def wait_texts_are_durations(page_rows: list[dict[str, str]]) -> None:
    for row in page_rows:
        for column in ("wait p50", "wait p99"):
            assert re.fullmatch(r"\d+ ms|\d+\.\d\d s", row[column]), row


async def page_fits_a_phone(watched: WatchedPage) -> None:
    """On a phone-sized screen the page does not scroll sideways (only the table may)."""
    await watched.page.set_viewport_size(PHONE)
    page_width = await watched.page.evaluate("document.documentElement.scrollWidth")
    await watched.page.screenshot(path=PHONE_SCREENSHOT, full_page=True)
    assert page_width <= PHONE["width"]


async def test_the_dashboard_shows_live_per_tier_counts_without_errors(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    server = await launcher.serve(
        "--workers", "2", "--max-attempts", "1", "--order-timeout", str(ORDER_TIMEOUT)
    )
    async with watched_page() as watched:  # the browser starts first: the busy window is short
        await fill_the_queue(launcher, http, server)
        await watched.page.goto(server.url + "/")
        busy = await read_stats(http, server)
        assert busy["tiers"]["vip"]["queued"] == 3 and busy["tiers"]["regular"]["running"] == 2
        await wait_for_page(watched, as_shown(busy), within=PAGE_SECONDS)
        assert await watched.page.inner_text("#state") == "accepting orders"
        await watched.page.screenshot(path=SCREENSHOT, full_page=True)

        done = await wait_for_stats(http, server, done=11, within=ORDER_TIMEOUT + 20)
        assert done["tiers"]["vip"]["succeeded"] == 3
        assert done["tiers"]["regular"]["failed"] == 1
        await wait_for_page(watched, as_shown(done), within=PAGE_SECONDS)
        wait_texts_are_durations(await watched.page.evaluate(READ_TABLE))
        await page_fits_a_phone(watched)

        assert len(watched.requests_for("/")) == 1, "the page must update without a reload"
        assert len(watched.requests_for("/stats")) >= 2
        assert watched.console_errors == []
        assert watched.page_errors == []
        assert watched.foreign_requests() == []


async def test_the_dashboard_says_when_the_server_drains_and_when_it_is_gone(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    server = await launcher.serve("--workers", "1", "--drain-timeout", "6")
    running = await accept(http, server, {"duration": 60})
    await wait_for_status(http, server, running, "running")
    async with watched_page() as watched:
        page = watched.page
        await page.goto(server.url + "/")
        await expect(page.locator("#state")).to_have_text("accepting orders")
        await expect(page.locator("#running")).to_have_text("1")

        server.send(signal.SIGTERM)
        await expect(page.locator("#state")).to_have_text(
            "draining: not accepting", timeout=PAGE_SECONDS * 1000
        )
        assert await server.wait_exit(within=30) == 0
        await expect(page.locator("#state")).to_have_text(
            re.compile(r"^unreachable \(.+\)"), timeout=PAGE_SECONDS * 1000
        )
        await expect(page.locator("main")).to_have_class("stale")
        await expect(page.locator("#running")).to_have_text("1")  # the last figures stay
        await page.screenshot(path=GONE_SCREENSHOT, full_page=True)

        assert watched.page_errors == []
        # Only the page's own summary polls may fail while the server is gone: the poll that
        # was in flight when it went may be any of the three (the history asks ?after=T).
        polls = {server.url + path for path in ("/stats", "/stats/queues", "/stats/history")}
        assert {url.split("?")[0] for _, url in watched.console_errors} <= polls
        assert watched.foreign_requests() == []
