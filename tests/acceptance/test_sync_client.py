"""`SyncClient` from a plain script (no event loop) against a real `skipline serve`."""

from __future__ import annotations

import asyncio

import pytest

from skipline.client import NotFound, SyncClient
from tests.acceptance.processes import Launcher, wait_healthy


def test_a_script_submits_waits_and_lists_without_an_event_loop(launcher: Launcher) -> None:
    server = launcher.start("--workers", "2")
    asyncio.run(wait_healthy(server))
    key = asyncio.run(launcher.add_key("script", "regular"))

    with SyncClient(server.url, key) as client:
        order = client.submit({"sku": 3}, duration=0.2)
        done = client.wait(order.id, timeout=20)
        assert done.status == "succeeded" and done.result == {"slept": 0.2}
        assert [found.id for found in client.list(status="succeeded")] == [order.id]
        with pytest.raises(NotFound):
            client.get("no-such-order")
