"""The HTTP contract of a real server process: tiers by identity, body limits without memory
growth, idempotent submission."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from typing import IO

import aiohttp
import pytest

from tests.acceptance.processes import Launcher, Server, post_order

MIB = 1024 * 1024
MEMORY_SLACK_KIB = 5 * 1024
"""How much the server's resident memory may grow while it refuses 8 MiB bodies."""


async def test_anonymous_caller_cannot_ask_for_vip(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    server = await launcher.serve("--workers", "1")
    reply = await post_order(http, server, {"user_type": "vip"})
    assert reply.status == 403
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert reply.body["status"] == 403 and "vip" in reply.body["detail"]
    assert (await post_order(http, server, {"user_type": "regular"})).status == 202


async def post_raw(
    http: aiohttp.ClientSession, server: Server, data: bytes | IO[bytes] | AsyncIterator[bytes]
) -> int:
    headers = {"Content-Type": "application/json"}
    async with http.post(server.url + "/orders", data=data, headers=headers) as response:
        await response.read()
        return response.status


async def chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """A streamed body with no Content-Length (chunked transfer encoding)."""
    yield b'{"payload": {"blob": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b'"}}'


async def test_8_mib_bodies_get_413_without_the_server_growing(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    server = await launcher.serve("--workers", "1")
    await post_raw(http, server, b"{" * (128 * 1024))  # warm up the refusal path
    baseline = server.memory_kib("VmRSS")
    peak_resettable = server.reset_peak_memory()

    big = b'{"payload": {"blob": "' + b"x" * (8 * MIB) + b'"}}'
    assert await post_raw(http, server, io.BytesIO(big)) == 413
    assert await post_raw(http, server, chunks(8 * MIB)) == 413

    assert server.memory_kib("VmRSS") - baseline < MEMORY_SLACK_KIB
    if peak_resettable:
        assert server.memory_kib("VmHWM") - baseline < MEMORY_SLACK_KIB
    assert (await post_order(http, server, {"duration": 0})).status == 202


async def test_same_idempotency_key_returns_the_first_order(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    server = await launcher.serve("--workers", "1")
    key = await launcher.add_key("retrying-client", "regular")
    headers = {"Idempotency-Key": "order-2024-0001"}
    first = await post_order(http, server, {"payload": {"sku": 7}}, key, headers)
    second = await post_order(http, server, {"payload": {"sku": 7}}, key, headers)
    assert (first.status, second.status) == (202, 200)
    assert first.body["id"] == second.body["id"]
    other = await post_order(http, server, {"payload": {"sku": 7}}, key,
                             {"Idempotency-Key": "order-2024-0002"})
    assert other.status == 202 and other.body["id"] != first.body["id"]


async def raw_exchange(server: Server, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes that no HTTP client library would produce; read the whole answer."""
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in
               (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("request_bytes", [
    pytest.param(b"THIS IS NOT HTTP\r\n\r\n", id="garbage-request-line"),
    pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n",
                 id="header-over-the-limit"),
    pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\x01: v\r\n\r\n",
                 id="invalid-header-name"),
    pytest.param(b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
                 id="bad-content-length"),
])
async def test_requests_aiohttp_rejects_itself_get_problem_json(
    launcher: Launcher, request_bytes: bytes
) -> None:
    """Malformed HTTP never reaches the app: the connection handler answers it, and that
    answer is a problem too (4xx, application/problem+json, a detail saying what is wrong)."""
    server = await launcher.serve("--workers", "1")
    status, headers, body = await raw_exchange(server, request_bytes)
    assert 400 <= status < 500
    assert headers["content-type"].startswith("application/problem+json")
    problem = json.loads(body)
    assert problem["status"] == status and problem["title"] and problem["detail"]
