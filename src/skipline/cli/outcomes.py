"""`skipline retry ID` and `skipline failed`: queue a failed or cancelled order again, and list
the failed orders (the dead letters) with their errors, newest first."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table

from skipline.cli.http import client_options, plain_json, with_client
from skipline.cli.options import examples, option
from skipline.cli.tables import order_table
from skipline.client import Client

JSON_OPTION = option("--json", "as_json", is_flag=True, default=False,
                     help="Print the server's JSON instead of a table.")


@click.command(epilog=examples(
    "skipline retry 01a2359b8f3e-4b1c…",
    "skipline failed --json | jq -r '.[].id' | xargs -n1 skipline retry",
))
@client_options
@click.argument("order_id")
@JSON_OPTION
def retry(url: str, key: str | None, order_id: str, as_json: bool) -> None:
    """Queue a failed or cancelled order again, with a fresh attempts budget.

    How its last run ended stays in the order's history."""
    order = plain_json(asyncio.run(with_client(url, key, lambda client: client.retry(order_id))))
    if as_json:
        click.echo(json.dumps(order, indent=2, ensure_ascii=False))
    else:
        Console(soft_wrap=True).print(order_table(order))


@click.command(epilog=examples("skipline failed --key \"$KEY\"", "skipline failed --json"))
@client_options
@option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True,
        help="At most this many orders.")
@JSON_OPTION
def failed(url: str, key: str | None, limit: int, as_json: bool) -> None:
    """List failed orders with their errors, newest first (your key's own; every order for
    an admin key). `skipline retry ID` queues one again."""
    orders = asyncio.run(with_client(url, key, lambda client: _failed(client, limit)))
    if as_json:
        click.echo(json.dumps(orders, indent=2, ensure_ascii=False))
    elif not orders:
        click.echo("No failed orders.")
    else:
        Console(soft_wrap=True).print(failed_table(orders))


async def _failed(client: Client, limit: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async for order in client.list(status="failed", page_size=min(limit, 500)):
        found.append(plain_json(order))
        if len(found) >= limit:
            break
    return found


def failed_table(orders: list[dict[str, Any]]) -> Table:
    """One line per order: its id (whole, to paste into `skipline retry`), tier, attempts and
    its error's last line (a handler's error ends with the exception and its message). When
    it failed is in --json (finished_at)."""
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False,
                  show_edge=False)
    table.add_column("order", no_wrap=True)
    table.add_column("tier", no_wrap=True)
    table.add_column("attempts", justify="right", no_wrap=True)
    table.add_column("error", overflow="fold")
    for order in orders:
        lines = [line for line in str(order.get("error") or "").splitlines() if line.strip()]
        table.add_row(str(order["id"]), str(order["tier"]), str(order["attempts"]),
                      lines[-1] if lines else "")
    return table
