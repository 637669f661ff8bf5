"""`skipline retry ID` and `skipline failed`: requeue a failed or cancelled order, and list
the failed orders with their errors (the dead letters), newest first."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from skipline.cli.client import _call, _print_json, client_options
from skipline.cli.options import option

PAGE = 100


@click.command()
@client_options
@click.argument("order_id")
def retry(url: str, key: str | None, order_id: str) -> None:
    """Queue a failed or cancelled order again, with a fresh attempts budget.

    Its previous outcome stays in the order's history. Prints the queued order as JSON."""
    _, order = asyncio.run(_call("POST", url, f"/orders/{order_id}/retry", key))
    _print_json(order)


@click.command()
@client_options
@option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True,
        help="At most this many orders.")
@click.option("--json", "as_json", is_flag=True, default=False,
              help="Print the orders as a JSON array.")
def failed(url: str, key: str | None, limit: int, as_json: bool) -> None:
    """List failed orders with their errors, newest first (your key's own; all for an
    admin key). `skipline retry ID` queues one again."""
    orders = asyncio.run(_failed_orders(url, key, limit))
    if as_json:
        _print_json(orders)
        return
    if not orders:
        click.echo("No failed orders.")
        return
    for order in orders:
        error = (order.get("error") or "").splitlines()
        click.echo(f"{order['id']}  {order['tier']}  attempts={order['attempts']}  "
                   f"finished={order.get('finished_at') or '-'}  "
                   f"{json.dumps(error[0] if error else '')}")


async def _failed_orders(url: str, key: str | None, limit: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(found) < limit:
        path = f"/orders?status=failed&limit={min(PAGE, limit - len(found))}"
        if cursor:
            path += f"&cursor={cursor}"
        _, page = await _call("GET", url, path, key)
        found += page["orders"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return found
