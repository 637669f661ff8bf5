"""`Client`: skipline's HTTP API from Python, async, on aiohttp. Every call retries connection
errors, 503 and 429 (honouring Retry-After) until its deadline; a submission carries one
Idempotency-Key, generated once and reused by every retry, so it is stored at most once."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import msgspec

from skipline.api.schemas import OrderOut, OrderPage, StatsOut, WorkerList, WorkerOut
from skipline.client.transport import Call, Transport
from skipline.domain.models import MAX_WAIT

Order = OrderOut
"""An order as the API returns it (id, tier, status, attempts, times, payload, result, error,
callback, history)."""
Stats = StatsOut
Worker = WorkerOut
Workers = list[WorkerOut]
"""(A name of its own: inside the clients, `list` is a method.)"""
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
DEFAULT_DEADLINE = 30.0
"""Seconds a call keeps retrying (connection errors, 503, 429) before it gives up."""
DEFAULT_TIMEOUT = 10.0
"""Seconds one HTTP request may take."""


class Client:
    """`async with Client("http://127.0.0.1:8080", key=...) as client: ...`"""

    def __init__(
        self, url: str, key: str | None = None, *, deadline: float = DEFAULT_DEADLINE,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._transport = Transport(url, key, deadline, timeout)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._transport.close()

    async def submit(
        self, payload: Any = None, *, user_type: str | None = None, kind: str | None = None,
        customer: str | None = None, delay: float | None = None,
        duration: float | None = None, callback_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> Order:
        """Submit an order; returns it once durably accepted (or the first order submitted
        with `idempotency_key`). Options left None are not sent."""
        order, _ = await self.submit_with_outcome(
            payload, user_type=user_type, kind=kind, customer=customer, delay=delay,
            duration=duration, callback_url=callback_url, idempotency_key=idempotency_key)
        return order

    async def submit_with_outcome(
        self, payload: Any = None, *, idempotency_key: str | None = None, **options: Any,
    ) -> tuple[Order, bool]:
        """`submit`, and whether it created the order (False: `idempotency_key` had been
        used, and this is the order first submitted with it)."""
        fields = {"payload": payload, **options}
        body = {name: value for name, value in fields.items() if value is not None}
        key = idempotency_key or str(uuid.uuid4())
        answer = await self._transport.send(
            Call("POST", "/orders", body, {"Idempotency-Key": key}))
        return msgspec.json.decode(answer.body, type=OrderOut), answer.status == 202

    async def get(self, order_id: str) -> Order:
        return await self._order(Call("GET", order_path(order_id)))

    async def wait(self, order_id: str, timeout: float) -> Order:  # noqa: ASYNC109
        """The order once it is final, or as it is after `timeout` seconds (the server holds
        each request up to a minute; longer waits take several)."""
        ends = time.monotonic() + timeout
        while True:
            left = ends - time.monotonic()
            if left <= 0:
                return await self.get(order_id)
            chunk = min(left, MAX_WAIT)
            call = Call("GET", f"{order_path(order_id)}?wait={chunk:.3f}",
                        read_timeout=chunk + self._transport.timeout)
            order = await self._order(call)
            if order.status in FINAL_STATUSES:
                return order

    async def cancel(self, order_id: str) -> Order:
        return await self._order(Call("DELETE", order_path(order_id), retry_sent=False))

    async def retry(self, order_id: str) -> Order:
        """Queue a failed or cancelled order again (a fresh attempts budget)."""
        return await self._order(
            Call("POST", order_path(order_id) + "/retry", retry_sent=False))

    async def list(
        self, *, status: str | None = None, tier: str | None = None, page_size: int = 100,
    ) -> AsyncIterator[Order]:
        """Your orders (all of them for an admin key), newest first, page by page."""
        query: dict[str, Any] = {"limit": page_size}
        query.update((name, value) for name, value in (("status", status), ("tier", tier))
                     if value is not None)
        while True:
            answer = await self._transport.send(Call("GET", "/orders?" + urlencode(query)))
            page = msgspec.json.decode(answer.body, type=OrderPage)
            for order in page.orders:
                yield order
            if page.next_cursor is None:
                return
            query["cursor"] = page.next_cursor

    async def stats(self) -> Stats:
        answer = await self._transport.send(Call("GET", "/stats"))
        return msgspec.json.decode(answer.body, type=StatsOut)

    async def workers(self) -> Workers:
        """The live worker pools (an admin key only), the longest running first."""
        answer = await self._transport.send(Call("GET", "/workers"))
        return msgspec.json.decode(answer.body, type=WorkerList).workers

    async def _order(self, call: Call) -> Order:
        answer = await self._transport.send(call)
        return msgspec.json.decode(answer.body, type=OrderOut)


def order_path(order_id: str) -> str:
    if not order_id or "/" in order_id or "?" in order_id:
        raise ValueError(f"not an order id: {order_id!r}")
    return f"/orders/{order_id}"
