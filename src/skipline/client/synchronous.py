"""`SyncClient`: the same calls as `Client` for scripts without an event loop. It owns one
private loop (an asyncio.Runner) for its whole life; do not use it inside a running loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from skipline.client.asynchronous import (
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUT,
    Client,
    Order,
    Stats,
    Workers,
)

T = TypeVar("T")


class SyncClient:
    """`with SyncClient("http://127.0.0.1:8080") as client: client.submit(payload={...})`"""

    def __init__(
        self, url: str, key: str | None = None, *, deadline: float = DEFAULT_DEADLINE,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._runner = asyncio.Runner()
        self._client = Client(url, key, deadline=deadline, timeout=timeout)

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._run(self._client.close())
        self._runner.close()

    def submit(self, payload: Any = None, **options: Any) -> Order:
        """See Client.submit."""
        return self._run(self._client.submit(payload, **options))

    def get(self, order_id: str) -> Order:
        return self._run(self._client.get(order_id))

    def wait(self, order_id: str, timeout: float) -> Order:
        return self._run(self._client.wait(order_id, timeout))

    def cancel(self, order_id: str) -> Order:
        return self._run(self._client.cancel(order_id))

    def retry(self, order_id: str) -> Order:
        return self._run(self._client.retry(order_id))

    def list(self, *, status: str | None = None, tier: str | None = None,
             limit: int | None = None) -> list[Order]:
        """At most `limit` orders (all when None), newest first."""
        async def collect() -> list[Order]:
            found: list[Order] = []
            async for order in self._client.list(status=status, tier=tier):
                found.append(order)
                if limit is not None and len(found) >= limit:
                    break
            return found

        return self._run(collect())

    def stats(self) -> Stats:
        return self._run(self._client.stats())

    def workers(self) -> Workers:
        return self._run(self._client.workers())

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(call)
