"""How the client commands show an order and the statistics to a person: rich tables, with
times as UTC ISO 8601 and waits in seconds. (--json prints the server's JSON instead.)"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

STATS_COLUMNS = ("queued", "running", "succeeded", "failed", "cancelled")


def order_table(order: dict[str, Any]) -> Table:
    """One order: a label and a value per line, fields that are empty left out."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in order_rows(order):
        grid.add_row(label, value)
    return grid


def order_rows(order: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("order", str(order.get("id", ""))),
        ("status", str(order.get("status", ""))),
        ("tier", f"{order.get('tier')} (priority {order.get('priority')})"),
        *([("customer", str(order["customer"]))] if order.get("customer") else []),
        ("attempts", str(order.get("attempts", 0))),
        ("created", str(order.get("created_at", ""))),
    ]
    started, finished = order.get("started_at"), order.get("finished_at")
    if started:
        rows.append(("started", f"{started}{_span('waited', order.get('created_at'), started)}"))
    if finished:
        rows.append(("finished", f"{finished}{_span('ran', started, finished)}"))
    for field in ("payload", "result", "error"):
        value = order.get(field)
        if value is not None:
            rows.append((field, value if isinstance(value, str) and field == "error"
                         else json.dumps(value, ensure_ascii=False)))
    return rows + outcome_rows(order)


def outcome_rows(order: dict[str, Any]) -> list[tuple[str, str]]:
    """Its callback's delivery, and how earlier runs ended (one line per requeue)."""
    rows = []
    callback = order.get("callback")
    if callback:
        note = f", {callback['last_error']}" if callback.get("last_error") else ""
        rows.append(("callback", f"{callback['url']}  {callback['status']} "
                                 f"({callback['attempts']} attempt(s){note})"))
    for run in order.get("history") or []:
        error = f": {run['error'].splitlines()[-1]}" if run.get("error") else ""
        rows.append(("earlier run", f"{run['status']} after {run['attempts']} attempt(s) "
                                    f"at {run.get('finished_at') or '-'}{error}"))
    return rows


def _span(what: str, since: str | None, until: str) -> str:
    seconds = _seconds_between(since, until)
    return "" if seconds is None else f"  ({what} {seconds:.2f} s)"


def _seconds_between(since: str | None, until: str | None) -> float | None:
    if not since or not until:
        return None
    try:
        return (_parse(until) - _parse(since)).total_seconds()
    except ValueError:
        return None


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def stats_table(report: dict[str, Any]) -> Group:
    """Per tier, best priority first, then per kind: counts by status and the wait
    percentiles; below, the throughput. Fits 80 columns, the width rich assumes when stdout
    is not a terminal."""
    accepting = "accepting orders" if report.get("accepting", True) else "NOT accepting orders"
    throughput = report.get("throughput_per_second")
    caption = f"throughput {throughput:g} orders/s (last minute), {accepting}" \
        if isinstance(throughput, int | float) else accepting
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False,
                  show_edge=False)
    table.add_column("tier (prio)", no_wrap=True)
    for column in STATS_COLUMNS:
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("wait p50", justify="right", no_wrap=True)
    table.add_column("wait p99", justify="right", no_wrap=True)
    tiers: dict[str, dict[str, Any]] = report.get("tiers", {})
    for name, tier in sorted(tiers.items(), key=lambda item: (item[1].get("priority", 0), item[0])):
        table.add_row(f"{name} ({tier.get('priority', '?')})",
                      *(str(tier.get(column, 0)) for column in STATS_COLUMNS),
                      _wait(tier.get("wait_p50")), _wait(tier.get("wait_p99")))
    kinds: dict[str, dict[str, Any]] = report.get("kinds", {})
    if kinds:
        table.add_section()
    for name, kind in sorted(kinds.items()):
        table.add_row(f"kind {name}", *(str(kind.get(column, 0)) for column in STATS_COLUMNS),
                      _wait(kind.get("wait_p50")), _wait(kind.get("wait_p99")))
    return Group(table, Text(caption))


def _wait(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.3f} s"
