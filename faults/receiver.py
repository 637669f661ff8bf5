"""A callback receiver for fault scenarios: a real HTTP server on 127.0.0.1 in the harness
process that checks each delivery's signature, answers some with a 500 (so retries happen
too), and remembers which orders it accepted (2xx). The checker compares that with the final
orders that asked for a callback: each must have been delivered at least once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from pathlib import Path

from aiohttp import web

from skipline.signing import SIGNATURE_HEADER, verify

SECRET = "fault-harness-callback-secret"


class CallbackReceiver:
    def __init__(self, secret: str = SECRET, fail_rate: float = 0.2, seed: int = 0) -> None:
        self.secret = secret
        self.fail_rate = fail_rate
        self._rng = random.Random(seed)
        self.delivered: dict[str, int] = {}
        """Order id -> deliveries answered 2xx (more than one: sent again, at least once)."""
        self.refused = 0
        self.bad_signatures = 0
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Event()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hook/", self._receive)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def config_file(self, workdir: Path) -> Path:
        """A skipline.toml turning callbacks on for this receiver, with fast retries."""
        path = workdir / "skipline.toml"
        path.write_text(
            f'[callbacks]\nallow = ["{self.url}/hook/"]\nsecret = "{self.secret}"\n'
            "backoff_base = 0.2\nbackoff_max = 1.0\n", encoding="utf-8")
        return path

    async def undelivered(self, order_ids: set[str], timeout: float) -> set[str]:  # noqa: ASYNC109
        """Those of `order_ids` not delivered within `timeout` seconds (retries included)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while order_ids - set(self.delivered):
                    self._arrived.clear()
                    await self._arrived.wait()
        return order_ids - set(self.delivered)

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(self.secret, body, request.headers.get(SIGNATURE_HEADER, "")):
            self.bad_signatures += 1
            return web.Response(status=401)
        if self._rng.random() < self.fail_rate:
            self.refused += 1
            return web.Response(status=500)
        order_id = str(json.loads(body)["id"])  # signed, unlike any header
        self.delivered[order_id] = self.delivered.get(order_id, 0) + 1
        self._arrived.set()
        return web.Response(status=204)
