"""Reading the store's final state directly, through the `Store` protocol (the seam every
backend implements): every order of every owner, including orders no client was told about,
which an HTTP lookup by acknowledged id could never show."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from skipline.domain.models import Order, OrderQuery
from skipline.store import open_store
from skipline.store.base import Store

PAGE = 500
DRAIN_POLL = 0.25


@asynccontextmanager
async def opened(db_url: str) -> AsyncIterator[Store]:
    store = open_store(db_url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def all_orders(db_url: str) -> list[Order]:
    """Every order in the store, newest first, page by page."""
    orders: list[Order] = []
    async with opened(db_url) as store:
        cursor: int | None = None
        while True:
            page = await store.list_orders(OrderQuery(owner=None, limit=PAGE, before_seq=cursor))
            orders.extend(page)
            if len(page) < PAGE:
                return orders
            cursor = page[-1].seq


async def wait_drained(db_url: str, timeout: float) -> bool:  # noqa: ASYNC109
    """True once no order is queued or running (retries in backoff count as queued); False if
    `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    async with opened(db_url) as store:
        while time.monotonic() < deadline:
            stats = await store.stats()
            if all(c.queued == 0 and c.running == 0 for c in stats.counts.values()):
                return True
            await asyncio.sleep(DRAIN_POLL)
    return False
