"""README's library example, run as written: its `checkout` route submits with
`service.submit_order` inside a user's own aiohttp app that uses `skipline_context`. The
code block is read from README.md, so the test fails when the README drifts from the code."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from skipline.api import SERVICE
from skipline.testing import free_port

README = Path(__file__).resolve().parents[2] / "README.md"


def library_example(database: Path) -> dict[str, Any]:
    """The README's python block that calls submit_order, run with its database in tmp."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    code = next(block for block in blocks if "submit_order" in block)
    code = code.replace("sqlite:///./orders.db", f"sqlite:///{database}")
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace


async def test_the_readme_route_submits_an_order_that_runs(tmp_path: Path) -> None:
    app: web.Application = library_example(tmp_path / "orders.db")["app"]
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as session:
            body = {"member": True, "items": ["book"]}
            headers = {"Idempotency-Key": "cart-1"}
            async with session.post(f"http://127.0.0.1:{port}/checkout", json=body,
                                    headers=headers) as response:
                assert response.status == 202
                answer = await response.json()
            async with session.post(f"http://127.0.0.1:{port}/checkout", json=body,
                                    headers=headers) as response:
                assert (await response.json())["order_id"] == answer["order_id"]
        assert answer["status"] == "queued"
        service = app[SERVICE]
        deadline = time.monotonic() + 10
        while (order := await service.store.get(answer["order_id"])) is not None \
                and order.status.value != "succeeded":
            assert time.monotonic() < deadline, "the context's pool never ran the order"
            await asyncio.sleep(0.05)
        assert order is not None
        assert (order.tier, order.payload) == ("vip", {"cart": body})
    finally:
        await runner.cleanup()
