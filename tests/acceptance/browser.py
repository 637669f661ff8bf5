"""A real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, and a page that
records what a person would not want to see: console errors, uncaught exceptions, and requests
to any host other than the loopback address skipline listens on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import ConsoleMessage, Page, Request, ViewportSize, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LOCAL_HOST = "127.0.0.1"
VIEWPORT: ViewportSize = {"width": 1280, "height": 720}


@dataclass
class WatchedPage:
    """A browser page plus everything it logged as an error and every URL it asked for."""

    page: Page
    console_errors: list[tuple[str, str]] = field(default_factory=list)
    """(text, URL of the resource or script) of each console message of type error."""
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append((message.text, message.location.get("url", "")))

    def on_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def foreign_requests(self) -> list[str]:
        """Requests to anything but 127.0.0.1 (another host, a CDN, a data: or blob: URL)."""
        return [url for url in self.requests if urlsplit(url).hostname != LOCAL_HOST]

    def requests_for(self, path: str) -> list[str]:
        return [url for url in self.requests if urlsplit(url).path == path]


def require_browser() -> None:
    """Fail (never skip) when the browser is missing, saying how to install it."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run .ci/install-browser (Debian's chromium package)")


@asynccontextmanager
async def watched_page() -> AsyncIterator[WatchedPage]:
    """A fresh Chromium page whose errors and requests are recorded; closed on exit."""
    require_browser()
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page(viewport=VIEWPORT)
            watched = WatchedPage(page)
            page.on("console", watched.on_console)
            page.on("pageerror", lambda error: watched.page_errors.append(str(error)))
            page.on("request", watched.on_request)
            yield watched
        finally:
            await browser.close()
