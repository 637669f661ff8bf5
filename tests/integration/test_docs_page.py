"""`/docs` and `/openapi.json` as a newcomer reads them: inline code rendered (no literal
backticks), a curl example and its answer for every operation, and, mounted under a prefix,
the prefix named in the examples and in the OpenAPI `servers` entry."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from skipline.api.examples import EXAMPLES
from skipline.config import Settings
from skipline.runtime import skipline_app
from skipline.testing import free_port


@pytest.fixture
async def mounted(tmp_path: Path) -> AsyncIterator[str]:
    """skipline_app under /queue/ in a user's app, and at the root of another; their base URL."""
    app = web.Application()
    app.add_subapp("/queue/", skipline_app(Settings(db="memory://", workers=0)))
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_every_operation_has_an_example_and_inline_code_is_rendered(mounted: str) -> None:
    status, page = await get(mounted + "/queue/docs")
    assert status == 200
    prose = re.sub(r"<pre>.*?</pre>", "", page, flags=re.S)
    assert "`" not in prose, "inline code must be rendered, not shown with backticks"
    assert "<code>next_cursor</code>" in page

    status, text = await get(mounted + "/queue/openapi.json")
    document = json.loads(text)
    operations = {(method, path) for path, item in document["paths"].items()
                  for method in item if method != "parameters"}
    assert operations == set(EXAMPLES)
    sections = page.split("<section>")[1:]
    assert len(sections) == len(operations)
    for section in sections:
        assert "<p class=example>Example</p><pre>curl " in section
        assert "<p class=example>Answer (" in section

    unescaped = html.unescape(page)
    assert f"curl -s {mounted}/queue/stats" in unescaped
    assert '-H "Authorization: Bearer $KEY"' in unescaped  # double quotes: the shell expands it
    stats_example = document["paths"]["/stats"]["get"]["responses"]["200"]["content"][
        "application/json"]["example"]
    assert set(stats_example) == {"tiers", "throughput_per_second", "accepting"}


async def test_the_openapi_servers_entry_names_the_mount_prefix(mounted: str) -> None:
    _, text = await get(mounted + "/queue/openapi.json")
    assert json.loads(text)["servers"][0]["url"] == "/queue"
    async with aiohttp.ClientSession() as session, session.post(
        mounted + json.loads(text)["servers"][0]["url"] + "/orders", json={}) as response:
        assert response.status == 202


async def test_at_the_root_there_is_no_servers_entry(tmp_path: Path) -> None:
    app = skipline_app(Settings(db="memory://", workers=0))
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        _, text = await get(f"http://127.0.0.1:{port}/openapi.json")
        _, page = await get(f"http://127.0.0.1:{port}/docs")
    finally:
        await runner.cleanup()
    assert "servers" not in json.loads(text)
    assert f"curl -s http://127.0.0.1:{port}/stats" in html.unescape(page)
