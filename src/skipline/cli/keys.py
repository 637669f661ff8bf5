"""`skipline keys add|list|revoke`: API keys, stored hashed in the same store the server uses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import click
from rich.console import Console
from rich.table import Table

from skipline.cli.errors import Failure, SkiplineGroup
from skipline.cli.options import build_settings, option, store_options

# Key management serves no requests, so it needs no anonymous tier (allow_anonymous=False).
from skipline.config import Settings
from skipline.domain.fairness import MAX_WEIGHT
from skipline.domain.models import ApiKey
from skipline.runtime import open_ready_store
from skipline.service import OrderService
from skipline.store.base import Store

T = TypeVar("T")


@click.group(cls=SkiplineGroup)
def keys() -> None:
    """Create, list and revoke API keys.

    A key's tier decides the priority of the orders submitted with it."""


async def _with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store, do one thing with it, close it."""
    store = await open_ready_store(settings)
    try:
        return await work(store)
    finally:
        await store.close()


@keys.command("add")
@click.argument("name")
@option("--tier", required=True, help="The tier the key grants (one of the configured tiers).")
@option("--admin", is_flag=True, default=False, help="The key sees every order.")
@option(
    "--customers", is_flag=True, default=False,
    help="The key submits for its own customers: it may send `customer` on POST /orders, "
    "and each customer is a fair-share group of its own. Other keys sending it get 403.",
)
@option(
    "--weight", type=click.IntRange(1, MAX_WEIGHT), default=1, show_default=True,
    help="Shares each of the key's groups (the key, or each of its customers) gets inside "
    "its tier: with weight 2 it is served twice as often as a weight-1 group while both wait.",
)
@store_options
def add_key(
    name: str, tier: str, admin: bool, customers: bool, weight: int, db: str,
    durability: str, config: Path | None, tiers: str | None,
) -> None:
    """Create a key and print it, once: only its hash is stored.

    Inside a tier, orders are served fairly among fair-share groups (unless the tier sets
    fairness = "fifo"): each key is one group, or with --customers each of its customers is,
    and groups take turns in proportion to --weight; FIFO inside a group."""
    settings = build_settings(config, tiers, db=db, durability=durability, allow_anonymous=False)
    if tier not in settings.tiers:
        known = ", ".join(sorted(settings.tiers))
        message = f"{tier!r} is not a configured tier ({known})"
        raise click.BadParameter(message, param_hint="--tier")

    async def create(store: Store) -> str:
        return await OrderService(store, settings).add_key(name, tier, admin, customers, weight)

    secret = asyncio.run(_with_store(settings, create))
    click.echo(secret)
    role = f"{tier}, admin" if admin else tier
    role += ", customers" if customers else ""
    role += f", weight {weight}" if weight != 1 else ""
    click.echo(f"Created API key {name!r} ({role}). It is shown only once: keep it safe.", err=True)


@keys.command("list")
@store_options
def list_keys(db: str, durability: str, config: Path | None, tiers: str | None) -> None:
    """Show every key: name, tier, admin, customers, weight, created, revoked (never the
    secret or its hash)."""
    settings = build_settings(config, tiers, db=db, durability=durability, allow_anonymous=False)
    found = asyncio.run(_with_store(settings, lambda store: store.list_keys()))
    Console(soft_wrap=True).print(_key_table(found))


def _key_table(found: list[ApiKey]) -> Table:
    table = Table(title=f"{len(found)} API key(s)")
    for column in ("name", "tier", "admin", "customers", "weight", "created", "revoked"):
        table.add_column(column)
    for key in sorted(found, key=lambda k: k.created_at):
        created = datetime.fromtimestamp(key.created_at, UTC).isoformat(timespec="seconds")
        table.add_row(
            key.name, key.tier, _yes_no(key.admin), _yes_no(key.customers), str(key.weight),
            created.replace("+00:00", "Z"),
            _yes_no(key.revoked),
        )
    return table


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


@keys.command("revoke")
@click.argument("name")
@store_options
def revoke_key(
    name: str, db: str, durability: str, config: Path | None, tiers: str | None
) -> None:
    """Revoke a key at once: requests using it get 401 from then on."""
    settings = build_settings(config, tiers, db=db, durability=durability, allow_anonymous=False)
    if not asyncio.run(_with_store(settings, lambda store: store.revoke_key(name))):
        raise Failure(f"no API key named {name!r}")
    click.echo(f"Revoked API key {name!r}.", err=True)
