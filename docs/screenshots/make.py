"""Screenshots of the dashboard on a busy system, for the README and docs.

    .venv/bin/python docs/screenshots/make.py [--seconds 90]

Starts `skipline serve` on 127.0.0.1 (a SQLite file in a temporary folder, four worker slots,
two kinds of order: `ship` sleeps and fails the orders that ask for it, `invoice` runs one at
a time), loads it for `--seconds` with VIP orders and more regular orders than the workers can
take (so the regular backlog grows and turns overdue), some of them failing, from several
customers; meanwhile opens the page in
Debian's headless Chromium and saves PNGs here: the overview, the failures, one failed order's page
and the overview on a phone-sized screen."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from playwright.async_api import Page, async_playwright

from skipline.testing import free_port

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TIERS = 'vip = {priority = 0}\nregular = {priority = 1, max_wait = 30}'
HANDLER = '''
import asyncio

from skipline import Handlers

handlers = Handlers()


@handlers.kind("ship")
async def ship(order):
    """Sleeps the order's duration; fails the orders whose payload asks for it."""
    await asyncio.sleep(order.duration)
    if isinstance(order.payload, dict) and order.payload.get("fail"):
        raise RuntimeError("card declined by the payment provider (simulated)")
    return {"shipped": True}


@handlers.kind("invoice", concurrency=1)
async def invoice(order):
    """One at a time per process: this kind falls behind under load."""
    await asyncio.sleep(order.duration)
    return {"invoiced": True}
'''
SHOOTING_SECONDS = 60.0
"""More than the screenshots take: the load stops once they are taken."""
CUSTOMERS = ["acme", "globex", "initech", "umbrella", "hooli"]
CUSTOMER_WEIGHTS = [8, 4, 2, 1, 1]


def skipline(folder: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "skipline", *args], cwd=folder, check=True,
                          capture_output=True, text=True, env=environment())
    return done.stdout.strip()


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKIPLINE_")}
    return {**env, "PYTHONUNBUFFERED": "1"}


async def submit(http: aiohttp.ClientSession, url: str, key: str, body: dict[str, object],
                 ) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with http.post(url + "/orders", json=body, headers=headers) as response:
        await response.read()


async def load(url: str, keys: dict[str, str], seconds: float) -> None:
    """VIP about 5 orders/s of 0.4 s, regular about 6/s of 0.5 s (one in 12 failing), on 4
    worker slots: the regular tier falls behind."""
    rng = random.Random(7)
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            jobs = []
            if rng.random() < 0.5:
                jobs.append(submit(http, url, keys["bank"], {
                    "duration": 0.4, "kind": "ship", "payload": {"trade": rng.random()}}))
            if rng.random() < 0.1:
                jobs.append(submit(http, url, keys["shop"], {
                    "duration": 0.6, "kind": "invoice", "customer": "acme",
                    "payload": {"invoice": rng.randrange(1000)}}))
            if rng.random() < 0.6:
                customer = rng.choices(CUSTOMERS, CUSTOMER_WEIGHTS)[0]
                payload = {"basket": rng.randrange(1000), "fail": rng.random() < 1 / 12}
                jobs.append(submit(http, url, keys["shop"], {
                    "duration": 0.5, "kind": "ship", "customer": customer,
                    "payload": payload}))
            await asyncio.gather(*jobs)
            await asyncio.sleep(0.1)


async def shoot(url: str, admin: str, failed_id: str | None) -> None:
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            await page.goto(url + "/")
            await page.fill("#key-input", admin)
            await page.click("#key-form button")
            await settle(page)
            await page.screenshot(path=HERE / "overview.png", full_page=True)
            await page.goto(url + "/#/orders?status=failed")
            await settle(page)
            await page.screenshot(path=HERE / "failures.png", full_page=True)
            if failed_id is not None:
                await page.goto(url + "/#/order/" + failed_id)
                await settle(page)
                await page.screenshot(path=HERE / "order.png", full_page=True)
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.goto(url + "/#/")
            await settle(page)
            await page.screenshot(path=HERE / "phone.png", full_page=True)
        finally:
            await browser.close()


async def settle(page: Page) -> None:
    """Two polls of the page (every 2 s): fresh figures and the charts drawn."""
    await page.wait_for_function("document.querySelector('#updated').textContent !== 'never'")
    await asyncio.sleep(4.5)


async def first_failed(url: str, admin: str) -> str | None:
    async with aiohttp.ClientSession() as http, http.get(
        url + "/orders?status=failed&limit=1", headers={"Authorization": f"Bearer {admin}"},
    ) as response:
        orders = (await response.json())["orders"]
    return orders[0]["id"] if orders else None


async def main(seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="skipline-shots-") as temporary:
        folder = Path(temporary)
        (folder / "shots.py").write_text(HANDLER, encoding="utf-8")
        db = f"sqlite:///{folder / 'shots.db'}"
        common = ["--db", db, "--tiers", TIERS]
        keys = {
            "ops": skipline(folder, "keys", "add", "ops", "--tier", "vip", "--admin", *common),
            "bank": skipline(folder, "keys", "add", "bank", "--tier", "vip", *common),
            "shop": skipline(folder, "keys", "add", "shop", "--tier", "regular", "--customers",
                             *common),
        }
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "skipline", "serve", *common, "--port", str(port),
            "--workers", "4", "--handlers", "shots:handlers", "--max-attempts", "2",
            "--log-level", "warning",
            cwd=folder, env=environment())
        try:
            await wait_ready(url)
            # The load goes on while the pictures are taken: the system is busy in them.
            loading = asyncio.create_task(load(url, keys, seconds + SHOOTING_SECONDS))
            await asyncio.sleep(seconds)
            await shoot(url, keys["ops"], await first_failed(url, keys["ops"]))
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
        finally:
            server.terminate()
            await asyncio.wait_for(server.wait(), timeout=30)


async def wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            try:
                async with http.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"skipline did not start at {url}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90.0)
    asyncio.run(main(parser.parse_args().seconds))
