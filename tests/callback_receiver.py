"""A real HTTP receiver of callbacks on 127.0.0.1 for tests: records every request it gets and
answers from a script of statuses (the last one repeats); `/moved` answers a redirect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    statuses: list[int] = field(default_factory=lambda: [200])
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, done: Callable[[list[Received]], bool], within: float) -> None:
        """Wait (at most `within` seconds) until `done(received)` holds."""
        async with asyncio.timeout(within):
            while not done(self.received):
                self.arrived.clear()
                await self.arrived.wait()

    def at(self, path: str) -> list[Received]:
        return [request for request in self.received if request.path == path]

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(request.path, dict(request.headers), await request.read()))
        self.arrived.set()
        if request.path == "/moved":
            raise web.HTTPFound(self.url + "/hook")
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return web.Response(status=status, text="ok" if status < 300 else "no")


@asynccontextmanager
async def receiving(statuses: list[int] | None = None, port: int = 0) -> AsyncIterator[Receiver]:
    """A receiver listening on `port` (0: any free one) until the block ends."""
    receiver = Receiver("", list(statuses or [200]))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    host, bound = runner.addresses[0][:2]
    receiver.url = f"http://{host}:{bound}"
    try:
        yield receiver
    finally:
        await runner.cleanup()
