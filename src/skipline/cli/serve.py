"""`skipline serve` (API + workers in one process) and `skipline worker` (workers alone)."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from skipline.cli.options import (
    DEFAULTS,
    access_log_option,
    api_options,
    build_settings,
    callback_options,
    examples,
    option,
    run_options,
    settings_json,
    store_options,
    with_callbacks,
    worker_options,
)
from skipline.config import Settings
from skipline.database import check_location
from skipline.domain.errors import ConfigError
from skipline.logs import LogFormat, configure_logging
from skipline.registry import registry_for
from skipline.runtime import run, tune_garbage_collector
from skipline.store import open_store

SERVE_EXAMPLES = examples(
    "skipline serve                                  # http://127.0.0.1:8080, ./skipline.db",
    "skipline serve --db sqlite:////var/lib/skipline/orders.db --workers 8",
    "skipline serve --handler shop.handlers:ship --drain-timeout 60",
    "skipline serve --handlers shop.tasks:handlers   # the kinds a Handlers registry names",
    "skipline serve --log-format json --access-log   # for a log pipeline",
    "skipline serve --no-workers --db postgresql://skipline@db/skipline",
    "skipline serve --check                          # print the settings and exit",
)
WORKER_EXAMPLES = examples(
    "skipline worker --db postgresql://skipline@db/skipline --concurrency 8",
    "skipline worker --handler shop.handlers:ship --log-format json",
    "skipline worker --handlers shop.tasks:handlers --db postgresql://skipline@db/skipline",
)


@dataclass(frozen=True)
class RunFlags:
    """The flags about this process rather than the queue: logging and --check."""

    log_level: str
    log_format: LogFormat
    access_log: bool
    check: bool


@click.command(epilog=SERVE_EXAMPLES)
@api_options
@option("--workers", type=int, default=DEFAULTS.workers, help="Worker slots in this process.")
@option("--no-workers", is_flag=True, default=False, help="Serve the API only.")
@worker_options
@store_options
@callback_options
@run_options
@access_log_option
def serve(
    no_workers: bool, no_anonymous: bool, config: Path | None, log_level: str,
    log_format: LogFormat, access_log: bool, check: bool, callback_secret: str | None,
    **values: Any,
) -> None:
    """Serve the HTTP API and process orders.

    Runs until SIGTERM or Ctrl-C, then stops accepting (503), lets running orders finish for
    up to --drain-timeout and releases the rest to the queue. A second Ctrl-C exits at once
    (code 130): running orders are cancelled and their leases released; any that cannot be
    released run again when their lease expires. Repeated SIGTERMs are ignored."""
    settings = with_callbacks(
        build_settings(config, allow_anonymous=not no_anonymous, **values), config,
        callback_secret)
    with_workers = not no_workers and settings.workers > 0
    flags = RunFlags(log_level, log_format, access_log, check)
    _start(settings, flags, api=True, workers=with_workers)


@click.command(epilog=WORKER_EXAMPLES)
@option("--concurrency", type=int, default=DEFAULTS.workers,
        help="Orders this process works on at once.")
@worker_options
@store_options
@callback_options
@run_options
def worker(
    concurrency: int, config: Path | None, log_level: str, log_format: LogFormat, check: bool,
    callback_secret: str | None, **values: Any,
) -> None:
    """Process orders without serving HTTP.

    Several worker processes can share one PostgreSQL store to scale out. Stops like
    `skipline serve` (see its --help)."""
    if concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    # A worker serves no requests, so it needs no anonymous tier.
    settings = with_callbacks(
        build_settings(config, workers=concurrency, allow_anonymous=False, **values), config,
        callback_secret)
    _start(settings, RunFlags(log_level, log_format, False, check), api=False, workers=True)


def _start(settings: Settings, flags: RunFlags, *, api: bool, workers: bool) -> None:
    put_working_directory_on_path()
    if flags.check:
        _validate(settings, workers)
        click.echo(settings_json(settings))
        return
    check_location(settings.db)
    configure_logging(flags.log_level, flags.log_format, flags.access_log)
    tune_garbage_collector()
    code = asyncio.run(run(settings, api=api, workers=workers, access_log=flags.access_log))
    raise SystemExit(code)


def put_working_directory_on_path() -> None:
    """`--handler shop.handlers:ship` (or `--handlers shop.tasks:handlers`) finds
    `./shop/handlers.py` when run from the project's folder, as uvicorn finds its app: the
    installed `skipline` script, unlike `python -m`, does not put the working directory on
    the import path by itself."""
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)


def _validate(settings: Settings, workers: bool) -> None:
    """What --check can verify without side effects: the store URL, the directory of a SQLite
    file and the handlers."""
    open_store(settings.db, durability=settings.durability)
    check_location(settings.db)
    if workers or settings.handlers is not None:
        registry_for(settings.handler, settings.handlers)
