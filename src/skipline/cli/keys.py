"""`skipline keys add|list|revoke`: API keys, stored hashed in the same store the server uses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import click
from rich.console import Console
from rich.table import Table

from skipline.cli.errors import Failure, SkiplineGroup
from skipline.cli.options import build_settings, examples, option, store_options

# Key management serves no requests, so it needs no anonymous tier (allow_anonymous=False).
from skipline.config import Settings
from skipline.database import check_exists, describe
from skipline.domain.fairness import MAX_WEIGHT
from skipline.domain.models import ApiKey
from skipline.runtime import open_ready_store
from skipline.service import OrderService
from skipline.store.base import Store

T = TypeVar("T")


@click.group(cls=SkiplineGroup, epilog=examples(
    "KEY=$(skipline keys add acme --tier vip)       # the key goes to stdout, once",
    "skipline keys list --db sqlite:////var/lib/skipline/orders.db",
    "skipline keys revoke acme",
))
def keys() -> None:
    """Create, list and revoke API keys.

    A key's tier decides the priority of the orders submitted with it. Keys live in the
    database the server uses: run these commands with the server's --db (or SKIPLINE_DB).
    Each prints the database it opened on stderr."""


async def _with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store, say which, do one thing with it, close it."""
    store = await open_ready_store(settings)
    click.echo(f"database: {describe(settings.db)}", err=True)
    try:
        return await work(store)
    finally:
        await store.close()


@keys.command("add", epilog=examples(
    "KEY=$(skipline keys add acme --tier vip)      # keep the key in a variable",
    "skipline keys add ops --tier regular --admin  # sees every order",
))
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
    and groups take turns in proportion to --weight; FIFO inside a group.

    The key alone goes to stdout, so KEY=$(skipline keys add NAME --tier vip) keeps it."""
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


@keys.command("list", epilog=examples(
    "skipline keys list",
    "skipline keys list --json --db \"$SKIPLINE_DB\"",
))
@store_options
@option("--json", "as_json", is_flag=True, default=False,
        help="Print a JSON array instead of a table.")
def list_keys(
    db: str, durability: str, config: Path | None, tiers: str | None, as_json: bool
) -> None:
    """Show every key: name, tier, admin, customers, weight, created, revoked (never the
    secret or its hash)."""
    settings = build_settings(config, tiers, db=db, durability=durability, allow_anonymous=False)
    check_exists(settings.db)
    found = asyncio.run(_with_store(settings, lambda store: store.list_keys()))
    if as_json:
        click.echo(json.dumps([_key_json(key) for key in _oldest_first(found)], indent=2))
    else:
        Console(soft_wrap=True).print(_key_table(found))


def _oldest_first(found: list[ApiKey]) -> list[ApiKey]:
    return sorted(found, key=lambda k: k.created_at)


def _created(key: ApiKey) -> str:
    created = datetime.fromtimestamp(key.created_at, UTC).isoformat(timespec="seconds")
    return created.replace("+00:00", "Z")


def _key_json(key: ApiKey) -> dict[str, object]:
    return {"name": key.name, "tier": key.tier, "admin": key.admin,
            "customers": key.customers, "weight": key.weight,
            "created_at": _created(key), "revoked": key.revoked}


def _key_table(found: list[ApiKey]) -> Table:
    table = Table(title=f"{len(found)} API key(s)")
    for column in ("name", "tier", "admin", "customers", "weight", "created", "revoked"):
        table.add_column(column)
    for key in _oldest_first(found):
        table.add_row(key.name, key.tier, _yes_no(key.admin), _yes_no(key.customers),
                      str(key.weight), _created(key), _yes_no(key.revoked))
    return table


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


@keys.command("revoke", epilog=examples("skipline keys revoke acme"))
@click.argument("name")
@store_options
def revoke_key(
    name: str, db: str, durability: str, config: Path | None, tiers: str | None
) -> None:
    """Revoke a key at once: requests using it get 401 from then on.

    Revoking a key that is already revoked changes nothing and says so (exit 0)."""
    settings = build_settings(config, tiers, db=db, durability=durability, allow_anonymous=False)
    check_exists(settings.db)
    outcome = asyncio.run(_with_store(settings, lambda store: _revoke(store, name)))
    if outcome == "missing":
        raise Failure(f"no API key named {name!r}",
                      hint="skipline keys list shows the keys of this database")
    if outcome == "already":
        click.echo(f"API key {name!r} is already revoked; nothing to do.", err=True)
    else:
        click.echo(f"Revoked API key {name!r}.", err=True)


async def _revoke(store: Store, name: str) -> str:
    """'revoked', 'already' (it was revoked before) or 'missing' (no key of that name)."""
    if await store.revoke_key(name):
        return "revoked"
    known = {key.name: key for key in await store.list_keys()}
    return "already" if name in known else "missing"
