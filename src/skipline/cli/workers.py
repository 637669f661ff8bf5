"""`skipline workers`: the live worker pools of a running server's worker registry (an admin
key only), as a table or, with --json, the server's JSON."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table

from skipline.cli.http import client_options, plain_json, with_client
from skipline.cli.options import examples, option
from skipline.client import Client


@click.command(epilog=examples(
    "skipline workers --key \"$ADMIN_KEY\"",
    "skipline workers --key \"$ADMIN_KEY\" --json | jq '.workers[].host'",
))
@client_options
@option("--json", "as_json", is_flag=True, default=False,
        help="Print the server's JSON instead of a table.")
def workers(url: str, key: str | None, as_json: bool) -> None:
    """List the live worker pools: host, pid, kinds, slots busy and total, last heartbeat.

    A pool is listed while its heartbeat is less than a lease old."""
    found = asyncio.run(with_client(url, key, _workers))
    if as_json:
        click.echo(json.dumps({"workers": found}, indent=2, ensure_ascii=False))
    elif not found:
        click.echo("No live worker pools.")
    else:
        Console(soft_wrap=True).print(workers_table(found, datetime.now(UTC)))


async def _workers(client: Client) -> list[dict[str, Any]]:
    return [plain_json(worker) for worker in await client.workers()]


def workers_table(found: list[dict[str, Any]], now: datetime) -> Table:
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False,
                  show_edge=False)
    for column, justify in (("host", "left"), ("pid", "right"), ("kinds", "left"),
                            ("busy", "right"), ("up for", "right"), ("last beat", "right"),
                            ("id", "left")):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for worker in found:
        table.add_row(
            worker["host"], str(worker["pid"]), ",".join(worker["kinds"]),
            f"{worker['slots_busy']}/{worker['slots_total']}",
            _ago(worker["started_at"], now), _ago(worker["last_heartbeat"], now) + " ago",
            worker["id"],
        )
    return table


def _ago(moment: str, now: datetime) -> str:
    seconds = max(0.0, (now - datetime.fromisoformat(moment)).total_seconds())
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
