"""The operator's cockpit in a real headless Chromium against real `skipline serve`
processes: the charts fill with data points, a blocked tier's oldest queued order is seen
aging, a failed order is found among the failures and retried from its page with an admin
key (which also shows the worker registry), an admin-only summary asks for that key, and the
page rides out its server going away and coming back on the same port."""

from __future__ import annotations

import asyncio
import re
import signal
import time

import aiohttp
from playwright.async_api import Page, expect

from skipline.testing import free_port
from tests.acceptance.browser import watched_page
from tests.acceptance.processes import (
    Launcher,
    Server,
    accept,
    get_order,
    wait_for_status,
    wait_until_final,
)

PAGE_MS = 10_000
"""The page polls every 2 s; it must show a new state within this many milliseconds."""
NO_VALUE = "\u2013"
"""What the page shows in a cell that has no value yet (an en dash)."""
ONCE_FAILING = '''
"""Fails the first run of every order: a failed order that a retry then completes."""
seen = set()


async def handle(order):
    if order.id not in seen:
        seen.add(order.id)
        raise RuntimeError("the first run of every order fails")
    return {"ran": "again"}
'''


def as_seconds(text: str) -> float:
    """A duration as the page prints it ('850 ms', '1.25 s', '2.5 min') in seconds."""
    match = re.fullmatch(r"([\d.]+) (ms|s|min|h)", text)
    assert match, f"not a duration: {text!r}"
    unit = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0}[match.group(2)]
    return float(match.group(1)) * unit


async def tier_cell(page: Page, tier: str, column: str) -> str:
    """The text of `column` in `tier`'s row of the tier table."""
    return str(await page.evaluate("""([tier, column]) => {
      const table = document.querySelector("#tiers").closest("table");
      const index = [...table.querySelectorAll("thead th")].findIndex(
        (th) => th.innerText.trim() === column);
      const row = [...table.querySelectorAll("#tiers tr")].find(
        (tr) => tr.cells[0].innerText.trim() === tier);
      return row.cells[index].innerText.trim();
    }""", [tier, column]))


async def tier_duration(page: Page, tier: str, column: str) -> float:
    """`column` of `tier`'s row as seconds, once the page shows one: the counts and the
    queue readings come from separate polls, so the ages may arrive a poll later."""
    deadline = time.monotonic() + PAGE_MS / 1000
    while (text := await tier_cell(page, tier, column)) == NO_VALUE:
        assert time.monotonic() < deadline, f"{tier}'s {column} never got a value"
        await asyncio.sleep(0.2)
    return as_seconds(text)


async def chart_points(page: Page, chart: str) -> int:
    return int(await page.get_attribute(f"#{chart}", "data-points") or 0)


async def test_charts_fill_and_a_blocked_tier_s_oldest_order_ages(
    launcher: Launcher, http: aiohttp.ClientSession,
) -> None:
    server = await launcher.serve("--workers", "1")
    blocker = await accept(http, server, {"duration": 30})
    await wait_for_status(http, server, blocker, "running")
    for n in range(3):
        await accept(http, server, {"payload": {"behind": n}})
    async with watched_page() as watched:
        page = watched.page
        await page.goto(server.url + "/")
        await expect(page.locator("#state")).to_have_text("accepting orders")
        await expect(page.locator("#queued")).to_have_text("3", timeout=PAGE_MS)
        first = await tier_duration(page, "regular", "oldest queued")
        deadline = time.monotonic() + 12
        while await chart_points(page, "chart-depth") < 3:
            assert time.monotonic() < deadline, "the charts got no data points"
            await asyncio.sleep(0.5)
        later = as_seconds(await tier_cell(page, "regular", "oldest queued"))
        p99 = as_seconds(await tier_cell(page, "regular", "wait p99"))

        assert later >= first + 2, (first, later)
        assert p99 >= later - 2.5, "waits include the orders still waiting"
        for chart in ("chart-depth", "chart-rates", "chart-waits"):
            assert await chart_points(page, chart) >= 3
            segments = await page.locator(f"#{chart} path.line").count()
            assert segments >= 1, chart
        depth = await page.get_attribute('#chart-depth path[data-series="regular"]', "d")
        assert depth is not None and depth.count("L") >= 2, depth
        assert watched.console_errors == [] and watched.page_errors == []
        assert watched.foreign_requests() == []


async def test_a_failed_order_is_retried_from_its_page_with_an_admin_key(
    launcher: Launcher, http: aiohttp.ClientSession,
) -> None:
    (launcher.workdir / "once_failing.py").write_text(ONCE_FAILING, encoding="utf-8")
    admin = await launcher.add_key("ops", "regular", "--admin")
    server = await launcher.serve("--workers", "1", "--max-attempts", "1", "--dashboard",
                                  "admin", "--handler", "once_failing:handle")
    doomed = await accept(http, server, {"payload": {"try": "me"}})
    [failed] = await wait_until_final(http, server, [(doomed, None)], within=20)
    assert failed["status"] == "failed"
    async with watched_page() as watched:
        page = watched.page
        await page.goto(server.url + "/#/orders?status=failed")
        await expect(page.locator("#state")).to_contain_text("needs an admin key",
                                                             timeout=PAGE_MS)
        await expect(page.locator("#message")).to_contain_text("need an API key")
        await page.fill("#key-input", admin)
        await page.click("#key-form button")
        await expect(page.locator("#state")).to_have_text("accepting orders", timeout=PAGE_MS)
        workers = page.locator("#workers tr")
        await expect(workers).to_have_count(1, timeout=PAGE_MS)  # (hidden on this view)
        await expect(workers.locator("td").nth(1)).to_have_text(str(server.pid))
        await expect(workers.locator("td").nth(3)).to_have_text(re.compile(r"^[01] / 1$"))
        row = page.locator("#order-rows tr")
        await expect(row).to_have_count(1)
        await expect(row.locator("td.error")).to_have_text("RuntimeError: the first run of "
                                                           "every order fails")
        await row.locator("a").click()
        await expect(page.locator("#order-id")).to_have_text(doomed)
        await expect(page.locator("#order-payload")).to_contain_text('"try": "me"')
        await page.click("#retry-order")
        await expect(page.locator("#message")).to_have_text("order queued again")
        [final] = await wait_until_final(http, server, [(doomed, None)], within=20)
        await page.reload()
        await expect(page.locator("#order-status")).to_have_text("succeeded", timeout=PAGE_MS)
        await expect(page.locator("#order-history tr")).to_have_count(1)
        await expect(page.locator("#order-result")).to_contain_text('"ran": "again"')

        assert final["status"] == "succeeded"
        assert [run["status"] for run in final["history"]] == ["failed"]
        assert not any(admin in url for url in watched.requests), "the key never in a URL"
        assert watched.page_errors == [] and watched.foreign_requests() == []


async def test_the_page_survives_its_server_going_away_and_coming_back(
    launcher: Launcher, http: aiohttp.ClientSession,
) -> None:
    port = free_port()
    server = await launcher.serve("--workers", "1", port=port)
    async with watched_page() as watched:
        page = watched.page
        await page.goto(server.url + "/")
        await expect(page.locator("#state")).to_have_text("accepting orders")
        server.send(signal.SIGKILL)
        await server.wait_exit(within=10)
        await expect(page.locator("#state")).to_have_text(
            re.compile(r"^unreachable \(.+\)"), timeout=PAGE_MS)
        await expect(page.locator("main")).to_have_class("stale")

        again: Server = await launcher.serve("--workers", "1", port=port)
        order = await accept(http, again, {"payload": {"after": "restart"}})
        await wait_until_final(http, again, [(order, None)], within=20)
        await expect(page.locator("#state")).to_have_text("accepting orders", timeout=PAGE_MS)
        await expect(page.locator("main")).not_to_have_class("stale")
        await expect(page.locator("#updated")).not_to_have_text("never")
        assert (await get_order(http, again, order))["status"] == "succeeded"
        assert watched.page_errors == [] and watched.foreign_requests() == []
        assert len(watched.requests_for("/")) == 1, "it came back without a reload"
