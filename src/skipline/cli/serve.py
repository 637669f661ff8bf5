"""`skipline serve` (API + workers in one process) and `skipline worker` (workers alone)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from skipline.cli.options import (
    DEFAULTS,
    api_options,
    build_settings,
    configure_logging,
    option,
    run_options,
    settings_json,
    store_options,
    worker_options,
)
from skipline.config import Settings
from skipline.domain.errors import ConfigError
from skipline.handlers import load_handler
from skipline.runtime import run, tune_garbage_collector
from skipline.store import open_store


@click.command()
@api_options
@option("--workers", type=int, default=DEFAULTS.workers, help="Worker slots in this process.")
@option("--no-workers", is_flag=True, default=False, help="Serve the API only.")
@worker_options
@store_options
@run_options
def serve(
    no_workers: bool, no_anonymous: bool, config: Path | None, log_level: str, check: bool,
    **values: Any,
) -> None:
    """Serve the HTTP API and process orders.

    Runs until SIGTERM or Ctrl-C, then stops accepting (503), lets running orders finish for
    up to --drain-timeout and releases the rest to the queue."""
    settings = build_settings(config, allow_anonymous=not no_anonymous, **values)
    with_workers = not no_workers and settings.workers > 0
    _start(settings, log_level, check, api=True, workers=with_workers)


@click.command()
@option("--concurrency", type=int, default=DEFAULTS.workers,
        help="Orders this process works on at once.")
@worker_options
@store_options
@run_options
def worker(
    concurrency: int, config: Path | None, log_level: str, check: bool, **values: Any
) -> None:
    """Process orders without serving HTTP.

    Several worker processes can share one PostgreSQL store to scale out."""
    if concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    # A worker serves no requests, so it needs no anonymous tier.
    settings = build_settings(config, workers=concurrency, allow_anonymous=False, **values)
    _start(settings, log_level, check, api=False, workers=True)


def _start(settings: Settings, log_level: str, check: bool, *, api: bool, workers: bool) -> None:
    if check:
        _validate(settings, workers)
        click.echo(settings_json(settings))
        return
    configure_logging(log_level)
    tune_garbage_collector()
    code = asyncio.run(run(settings, api=api, workers=workers))
    raise SystemExit(code)


def _validate(settings: Settings, workers: bool) -> None:
    """What --check can verify without side effects: the store URL and the handler."""
    open_store(settings.db, durability=settings.durability)
    if workers:
        load_handler(settings.handler)
