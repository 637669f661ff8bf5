"""A real skipline HTTP server on 127.0.0.1 (an ephemeral port) over a real store, a client
for it, and a raw-socket exchange for what an HTTP client library would hide."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDictProxy

from skipline.api import create_app
from skipline.config import Settings
from skipline.service import OrderService
from skipline.store import open_store

SQLITE_READY = importlib.util.find_spec("skipline.store.sqlite") is not None
STORE_KINDS = [
    pytest.param("memory"),
    pytest.param("sqlite", marks=pytest.mark.skipif(not SQLITE_READY, reason="no SQLite store")),
]
PROMPT = 5.0
"""Seconds within which the server must answer a request it refuses early."""


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


@dataclass
class Api:
    """A running server: its address, its OrderService, and an HTTP session to it."""

    host: str
    port: int
    service: OrderService
    session: aiohttp.ClientSession

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    async def call(
        self, method: str, path: str, *, key: str | None = None, json_body: Any = None,
        data: bytes | None = None, headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        async with self.session.request(
            method, self.url(path), json=json_body, data=data, headers=sent,
        ) as response:
            return Reply(response.status, response.headers, await response.read())

    async def submit(self, body: Any = None, *, key: str | None = None, **kwargs: Any) -> Reply:
        return await self.call("POST", "/orders", key=key, json_body={} if body is None else body,
                               **kwargs)


def store_url(kind: str, folder: Path) -> str:
    return "memory://" if kind == "memory" else "sqlite:///" + str(folder / "t.db")


@asynccontextmanager
async def running_api(
    kind: str, folder: Path, settings: Settings | None = None,
    customise: Callable[[web.Application], None] | None = None,
) -> AsyncIterator[Api]:
    """Open the store, serve create_app(service) on port 0, close everything afterwards."""
    url = store_url(kind, folder)
    store = open_store(url)
    await store.open()
    try:
        service = OrderService(store, settings or Settings(db=url))
        async with serving(service, customise) as api:
            yield api
    finally:
        await store.close()


@asynccontextmanager
async def serving(
    service: OrderService, customise: Callable[[web.Application], None] | None = None,
) -> AsyncIterator[Api]:
    """Serve create_app(service) on an ephemeral port of 127.0.0.1 (the store is the
    caller's to open and close)."""
    app = create_app(service)
    if customise is not None:
        customise(app)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    try:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        async with aiohttp.ClientSession() as session:
            yield Api(host, port, service, session)
    finally:
        await runner.cleanup()


def assert_problem(reply: Reply, status: int, *words: str) -> dict[str, Any]:
    """An RFC 9457 body with the status, whose detail names every one of `words`."""
    assert reply.status == status, reply.body
    assert reply.content_type.startswith("application/problem+json"), reply.content_type
    problem = reply.json()
    assert set(problem) == {"type", "title", "status", "detail"}
    assert problem["status"] == status
    assert problem["title"] and problem["type"]
    assert "Traceback" not in problem["detail"]
    for word in words:
        assert word in problem["detail"], (word, problem["detail"])
    if status in (429, 503):
        assert int(reply.headers["Retry-After"]) >= 1
    return dict(problem)


# --- raw sockets ------------------------------------------------------------------------------
@dataclass
class RawReply:
    status: int
    headers: dict[str, str]
    """Lower-cased names; a repeated header keeps its last value."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def problem(self) -> dict[str, Any]:
        """The body, checked to be an RFC 9457 problem of this reply's status."""
        assert self.headers.get("content-type", "").startswith("application/problem+json"), (
            self.status, self.headers, self.body)
        problem: dict[str, Any] = self.json()
        assert problem["status"] == self.status and problem["title"] and problem["type"]
        assert "Traceback" not in problem["detail"]
        return problem


async def read_response(reader: asyncio.StreamReader) -> RawReply:
    """The next HTTP/1.1 response (an interim 1xx one too), within PROMPT seconds."""
    async with asyncio.timeout(PROMPT):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:
            return RawReply(status, headers, b"")
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return RawReply(status, headers, body)


@asynccontextmanager
async def raw_connection(
    api: Api,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(api.host, api.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):  # the server may reset a refused connection
            await writer.wait_closed()


def request_head(
    method: str, path: str, headers: dict[str, str], host: str = "127.0.0.1",
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
