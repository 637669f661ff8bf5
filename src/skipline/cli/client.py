"""`skipline submit|status|stats`: small HTTP clients of a running server. A readable table by
default, the server's JSON with --json; errors come back as one line (the problem the server
answered, or why it could not be reached) and, where the fix is the caller's, a hint."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click
from rich.console import Console

from skipline.cli.http import client_options, plain_json, with_client
from skipline.cli.options import examples, option
from skipline.cli.tables import order_table, stats_table
from skipline.cli.watch import change_line, follow, outcome_failure

JSON_OPTION = option("--json", "as_json", is_flag=True, default=False,
                     help="Print the server's JSON instead of a table.")
INTERVAL_OPTION = option("--interval", type=click.FloatRange(min=0.05), default=0.5,
                         metavar="SECONDS", help="Pause between two looks at the order.")

SUBMIT_EXAMPLES = examples(
    "skipline submit --payload '{\"item\": \"book\"}' --duration 1.5",
    "skipline submit --key \"$KEY\" --user-type vip --wait",
    "skipline submit --idempotency-key order-42 --json | jq -r .id",
    "skipline submit --kind ship --not-before 2026-12-03T09:00:00+01:00",
    "skipline submit --kind receipt --delay 3600",
)


@click.command(epilog=SUBMIT_EXAMPLES)
@client_options
@option("--duration", type=float, default=None, help="Seconds the 'simulate' handler sleeps.")
@option("--payload", default=None, metavar="JSON", help="The order's payload, as JSON.")
@option("--user-type", default=None, metavar="TIER",
        help="Ask for a tier (your key's own or a worse one).")
@option("--idempotency-key", default=None, help="Retrying with the same key returns the "
        "first order instead of creating another.")
@option("--customer", default=None, help="Your own customer the order is for: its own "
        "fair-share group (keys made with `keys add --customers` only).")
@option("--kind", default=None, help="Which handler runs it (the server's default: 'default').")
@option("--delay", type=float, default=None, metavar="SECONDS",
        help="Run it no sooner than this many seconds from now (up to 30 days).")
@option("--not-before", default=None, metavar="RFC3339",
        help="Run it no sooner than this time, e.g. 2026-12-03T09:00:00+01:00.")
@click.option("--wait", is_flag=True, default=False,
              help="Then follow the order until it is final (GET /orders/ID?wait= of "
                   "--interval seconds each); exit 1 if it failed or was cancelled.")
@INTERVAL_OPTION
@option("--timeout", type=click.FloatRange(min=0, min_open=True), default=60.0,
        metavar="SECONDS", help="With --wait: give up (exit 1) after this long.")
@JSON_OPTION
def submit(
    url: str, key: str | None, duration: float | None, payload: str | None,
    user_type: str | None, idempotency_key: str | None, customer: str | None, kind: str | None,
    delay: float | None, not_before: str | None, wait: bool, interval: float, timeout: float,
    as_json: bool,
) -> None:
    """Submit an order and show it (with --wait: once it is final)."""
    body = _order_body(payload, duration, user_type)
    extra = {"customer": customer, "kind": kind, "delay": delay, "not_before": not_before}
    body.update({name: value for name, value in extra.items() if value is not None})
    submitted, created = asyncio.run(with_client(url, key, lambda client: (
        client.submit_with_outcome(idempotency_key=idempotency_key, **body))))
    order = plain_json(submitted)
    if not created:
        click.echo("An order with this idempotency key already existed; shown below.", err=True)
    if wait:
        order = _follow(url, key, order["id"], interval, timeout)
    _show_order(order, as_json)
    if wait:
        _exit_on_bad_outcome(order)


def _order_body(payload: str | None, duration: float | None, user_type: str | None) -> Any:
    body: dict[str, Any] = {}
    if payload is not None:
        body["payload"] = _parse_json(payload)
    if duration is not None:
        body["duration"] = duration
    if user_type is not None:
        body["user_type"] = user_type
    return body


@click.command(epilog=examples(
    "skipline status 01a2359b8f3e-4b1c…",
    "skipline status --watch \"$ID\"          # until it is final",
    "skipline status --json \"$ID\" | jq .status",
))
@client_options
@click.argument("order_id")
@click.option("--watch", is_flag=True, default=False,
              help="Follow the order until it is final: a line per status change, then the "
                   "order; exit 1 if it failed or was cancelled.")
@INTERVAL_OPTION
@option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
        metavar="SECONDS", help="With --watch: give up (exit 1) after this long "
        "[default: no limit].")
@JSON_OPTION
def status(
    url: str, key: str | None, order_id: str, watch: bool, interval: float,
    timeout: float | None, as_json: bool,
) -> None:
    """Show one order."""
    if watch:
        order = _follow(url, key, order_id, interval, timeout)
    else:
        order = plain_json(asyncio.run(with_client(url, key, lambda client: client.get(order_id))))
    _show_order(order, as_json)
    if watch:
        _exit_on_bad_outcome(order)


@click.command(epilog=examples("skipline stats", "skipline stats --json | jq .tiers.vip"))
@client_options
@JSON_OPTION
def stats(url: str, key: str | None, as_json: bool) -> None:
    """Show the server's statistics.

    Per tier and per kind: counts by status and wait percentiles; and the recent
    throughput."""
    report = plain_json(asyncio.run(with_client(url, key, lambda client: client.stats())))
    if as_json:
        _print_json(report)
    else:
        Console(soft_wrap=True).print(stats_table(report))


def _follow(url: str, key: str | None, order_id: str, interval: float,
            timeout: float | None) -> dict[str, Any]:
    def show(order: dict[str, Any]) -> None:
        click.echo(change_line(order), err=True)

    return asyncio.run(follow(url, key, order_id, interval, timeout, show))


def _exit_on_bad_outcome(order: dict[str, Any]) -> None:
    failure = outcome_failure(order)
    if failure is not None:
        raise failure


def _show_order(order: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(order)
    else:
        Console(soft_wrap=True).print(order_table(order))


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--payload") from None


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))
