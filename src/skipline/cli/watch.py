"""Following an order until it is final, for `submit --wait` and `status --watch`: GET
/orders/{id} every --interval seconds (the server has no long-poll yet), one line on stderr
each time the status changes, and a bound on the whole wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from skipline.cli.errors import Failure
from skipline.cli.http import REQUEST_TIMEOUT, auth_headers, call

FINAL = ("succeeded", "failed", "cancelled")

Order = dict[str, Any]


async def follow(
    url: str, key: str | None, order_id: str, interval: float, limit: float | None,
    on_change: Callable[[Order], None],
) -> Order:
    """The order once final; Failure when `limit` seconds pass first (None: no limit)."""
    client_timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(timeout=client_timeout, headers=auth_headers(key)) as session:
        try:
            async with asyncio.timeout(limit):
                return await _poll(session, url, order_id, interval, on_change)
        except TimeoutError:
            raise Failure(
                f"order {order_id} is not final after --timeout {limit:g} s",
                hint=f"follow it with: skipline status --watch {order_id}",
            ) from None


async def _poll(
    session: aiohttp.ClientSession, url: str, order_id: str, interval: float,
    on_change: Callable[[Order], None],
) -> Order:
    seen: tuple[Any, Any] | None = None
    while True:
        _, order = await call(session, "GET", url, f"/orders/{order_id}")
        now = (order.get("status"), order.get("attempts"))
        if now != seen:
            seen = now
            on_change(order)
        if order.get("status") in FINAL:
            return dict(order)
        await asyncio.sleep(interval)


def change_line(order: Order) -> str:
    """`07:10:01  running  (attempt 1)`: local time, the status, and the attempt while it runs
    or, back in the queue after a failed attempt, that attempt and its error."""
    status = order.get("status", "?")
    attempts = order.get("attempts") or 0
    note = ""
    if status == "running":
        note = f"  (attempt {attempts})"
    elif status == "queued" and attempts:
        note = f"  (to retry after attempt {attempts}: {order.get('error') or 'no error kept'})"
    return f"{time.strftime('%H:%M:%S')}  {status}{note}"


def outcome_failure(order: Order) -> Failure | None:
    """A failed or cancelled order makes the command exit 1; a succeeded one does not."""
    status = order.get("status")
    if status == "failed":
        return Failure(f"order {order.get('id')} failed after {order.get('attempts')} "
                       f"attempt(s): {order.get('error')}")
    if status == "cancelled":
        return Failure(f"order {order.get('id')} was cancelled")
    return None
