"""Shared command-line options. Every flag also reads the environment variable
SKIPLINE_<FLAG> (e.g. --drain-timeout <- SKIPLINE_DRAIN_TIMEOUT); together with skipline.toml
they build the one Settings object a command passes down."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from skipline.config import Settings, load_callbacks, load_config_file, tiers_from_text
from skipline.database import display_url
from skipline.logs import LOG_FORMATS

Command = Callable[..., Any]
Decorator = Callable[[Command], Command]

DEFAULTS = Settings()
LOG_LEVELS = ("debug", "info", "warning", "error")


def envvar_for(flag: str) -> str:
    """--drain-timeout -> SKIPLINE_DRAIN_TIMEOUT."""
    return "SKIPLINE_" + flag.lstrip("-").upper().replace("-", "_")


def option(flag: str, *more: str, **attrs: Any) -> Decorator:
    """A click option that also reads SKIPLINE_<FLAG> and shows both in --help."""
    attrs.setdefault("show_default", "default" in attrs and not attrs.get("is_flag"))
    return click.option(flag, *more, envvar=envvar_for(flag), show_envvar=True, **attrs)


def combine(*decorators: Decorator) -> Decorator:
    """Apply several option decorators as one, in the order they are listed in --help."""

    def apply(function: Command) -> Command:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


store_options: Decorator = combine(
    option("--db", default=DEFAULTS.db, metavar="URL",
           help="Order store: sqlite:///path.db, postgresql://… or memory://."),
    option("--durability", type=click.Choice(["full", "normal"]), default=DEFAULTS.durability,
           help="'normal' trades power-loss safety for speed; never the default."),
    option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
           help="Tier configuration file [default: ./skipline.toml when it exists]."),
    option("--tiers", default=None, metavar="TOML",
           help="Tiers inline, overriding the file: the body of a [tiers] table, e.g. "
                "'vip = {priority = 0}' and 'regular = {priority = 1, max_wait = 300}' "
                "on separate lines."),
)

worker_options: Decorator = combine(
    option("--handler", default=DEFAULTS.handler, metavar="MODULE:FUNCTION",
           help="The async function that processes orders of the kind 'default' ('simulate' "
                "sleeps the order's duration)."),
    option("--handlers", default=DEFAULTS.handlers, metavar="MODULE:ATTRIBUTE",
           help="A skipline.Handlers registry: the kinds this process serves, each with its "
                "handler (instead of --handler)."),
    option("--drain-timeout", type=float, default=DEFAULTS.drain_timeout, metavar="SECONDS",
           help="On SIGTERM, how long running orders may finish before they are released."),
    option("--lease-seconds", type=float, default=DEFAULTS.lease_seconds, metavar="SECONDS",
           help="A claimed order returns to the queue if its worker is silent this long."),
    click.option("--heartbeats/--no-heartbeats", default=DEFAULTS.heartbeats,
                 envvar="SKIPLINE_HEARTBEATS", show_envvar=True, show_default=True,
                 help="Renew leases while handlers run. Turn off only in fault tests: a "
                      "handler longer than its lease then runs twice."),
    option("--order-timeout", type=float, default=DEFAULTS.order_timeout, metavar="SECONDS",
           help="A handler running longer is cancelled and counts as an error."),
    option("--max-attempts", type=int, default=DEFAULTS.max_attempts,
           help="Runs per order before it is failed for good (dead letter)."),
    option("--max-rescues", type=int, default=DEFAULTS.max_rescues,
           help="Expired leases per order before it is failed as poison."),
    option("--retention", type=float, default=DEFAULTS.retention, metavar="SECONDS",
           help="Finished orders (succeeded, failed, cancelled) are deleted this long after "
                "they finish (604800: a week); 0 keeps them forever."),
)

api_options: Decorator = combine(
    option("--host", default=DEFAULTS.host, help="Address to listen on."),
    option("--port", type=int, default=DEFAULTS.port, help="Port to listen on."),
    option("--max-queued", type=int, default=None,
           help="Cap on queued orders (all tiers); beyond it POST answers 503 + Retry-After."),
    option("--max-body", type=int, default=DEFAULTS.max_body, metavar="BYTES",
           help="Largest accepted request body; bigger ones get 413."),
    option("--no-anonymous", is_flag=True, default=False,
           help="Refuse requests without an API key (401)."),
    option("--anonymous-tier", default=None, metavar="TIER",
           help="The tier of requests without a key [default: anonymous_tier in "
                "skipline.toml, else 'regular']."),
    option("--head-timeout", type=float, default=DEFAULTS.head_timeout, metavar="SECONDS",
           help="A request head must arrive whole within this; then 408 and the connection "
                "is closed."),
    option("--body-timeout", type=float, default=DEFAULTS.body_timeout, metavar="SECONDS",
           help="A request body must arrive whole within this once it is read; then 408."),
    option("--keepalive-timeout", type=float, default=DEFAULTS.keepalive_timeout,
           metavar="SECONDS", help="An idle keep-alive connection is closed after this."),
    option("--forwarded-allow-ips", default=None, metavar="IPS", callback=lambda _c, _p, v:
           None if v is None else tuple(part.strip() for part in v.split(",") if part.strip()),
           help="Comma-separated addresses or networks of the reverse proxies whose "
                "X-Forwarded-For names the client ('*': any); from others it is ignored."),
)

callback_options: Decorator = combine(
    option("--callback-secret", default=None, metavar="SECRET",
           help="Signs callback deliveries (HMAC-SHA256); overrides [callbacks] secret in "
                "skipline.toml, whose [callbacks] allow list turns callbacks on."),
)

run_options: Decorator = combine(
    option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False), default="info",
           help="Log lines on stderr from this level up."),
    option("--log-format", type=click.Choice(LOG_FORMATS), default="text",
           help="'text' for people; 'json' for a log pipeline: one object per line with ts, "
                "level, event, message and, where they apply, order_id, tier, attempt, "
                "wait_ms, run_ms, error."),
    option("--check", is_flag=True, default=False,
           help="Validate the configuration, print the effective settings as JSON and exit."),
)


access_log_option: Decorator = option(
    "--access-log", is_flag=True, default=False,
    help="One line per HTTP request (method, path without query, status, time), whatever "
         "--log-level says. Never logs credentials.",
)


def build_settings(config: Path | None, tiers: str | None = None, **values: Any) -> Settings:
    """Settings from skipline.toml or --tiers, and the flags; raises ConfigError when invalid.
    --tiers replaces the whole file (its anonymous_tier too)."""
    given = {name: value for name, value in values.items() if value is not None}
    if tiers is not None:
        return Settings(tiers=tiers_from_text(tiers), **given)
    file = load_config_file(config)
    if file.anonymous_tier is not None:
        given.setdefault("anonymous_tier", file.anonymous_tier)
    return Settings(tiers=file.tiers, **given)


def with_callbacks(settings: Settings, config: Path | None, secret: str | None) -> Settings:
    """`settings` with skipline.toml's [callbacks] (for the commands that serve or deliver);
    `secret` (--callback-secret, SKIPLINE_CALLBACK_SECRET) overrides the file's."""
    return dataclasses.replace(settings, callbacks=load_callbacks(config, secret))


def settings_json(settings: Settings) -> str:
    """The effective settings for --check, with any database password hidden."""
    data = dataclasses.asdict(settings)
    data["db"] = display_url(settings.db)
    if data.get("callbacks"):
        data["callbacks"]["secret"] = "***"
    return json.dumps(data, indent=2, sort_keys=True)


def examples(*lines: str) -> str:
    """A command's epilog: example command lines, kept as written (click rewraps otherwise)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
