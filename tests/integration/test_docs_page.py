"""`/docs` and `/openapi.json` as a newcomer reads them: inline code rendered (no literal
backticks), a curl example and its answer for every operation, and, mounted under a prefix,
the prefix named in the examples and in the OpenAPI `servers` entry."""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from skipline.api import SERVICE
from skipline.api.examples import EXAMPLES, ORDER_ID
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
    assert set(stats_example) == {"tiers", "throughput_per_second", "accepting", "kinds"}


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


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl")
async def test_the_curl_examples_work_as_written(tmp_path: Path) -> None:
    """Each example runs through bash and curl against a real server (the example order id
    swapped for a real one) and answers with the status and the fields its example shows."""
    settings = Settings(db=f"sqlite:///{tmp_path / 'docs.db'}", workers=0)
    app = skipline_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        service = app[SERVICE]
        key = await service.add_key("docs", "vip", admin=True)
        order = await service.submit_order(payload={"item": "book"}, tier="vip")
        for (method, path), example in EXAMPLES.items():
            command = example.curl(f"http://127.0.0.1:{port}").replace(ORDER_ID, order.id)
            status, body = await run_curl(command, key)
            assert status == example.status, (command, body)
            if isinstance(example.answer, dict):
                assert set(json.loads(body)) == set(example.answer), command
            if (method, path) == ("post", "/orders"):  # the Idempotency-Key: a replay, 200
                assert (await run_curl(command, key))[0] == 200
    finally:
        await runner.cleanup()


async def run_curl(command: str, key: str) -> tuple[int, str]:
    """Run a curl command line in bash, with -w appended to learn the status."""
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", command.replace("curl -si", "curl -s") + " -w '\\n%{http_code}'",
        env={**os.environ, "KEY": key}, stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    body, _, status = out.decode().rpartition("\n")
    return int(status), body
