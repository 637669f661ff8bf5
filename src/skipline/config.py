"""One typed, validated settings object, built once from defaults, skipline.toml, SKIPLINE_*
variables and command-line flags (the CLI merges the last two), then passed down."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from skipline.domain.addresses import parse_networks
from skipline.domain.errors import ConfigError
from skipline.domain.models import ANONYMOUS_TIER, DEFAULT_TIERS, Durability, Fairness, Tier
from skipline.domain.ratelimit import RateLimit

DEFAULT_DB = "sqlite:///./skipline.db"
CONFIG_FILE = "skipline.toml"
TIER_KEYS = {
    "priority", "max_wait", "max_queued", "rate_limit", "burst", "fairness",
    "max_queued_per_customer",
}
FAIRNESS_MODES: tuple[Fairness, ...] = ("customers", "fifo")
TOP_LEVEL_KEYS = {"tiers", "anonymous_tier", "callbacks"}
MAX_STATS_TTL = 1.0
"""/stats and /metrics may be this many seconds old at most."""
DEFAULT_RETENTION = 7 * 24 * 3600.0
"""A week: long enough to look a finished order up, short enough for the table to stay small."""


CALLBACK_KEYS = {"allow", "secret", "timeout", "backoff_base", "backoff_max", "give_up_after"}


@dataclass(frozen=True, slots=True)
class CallbackSettings:
    """Webhooks (`[callbacks]` in skipline.toml): where orders may ask their outcome to be
    POSTed (URL prefixes), and the secret that signs each delivery."""

    allow: tuple[str, ...]
    secret: str = field(repr=False)
    timeout: float = 10.0
    """Seconds a receiver has to answer one delivery."""
    backoff_base: float = 1.0
    """Seconds before the second attempt; each later one waits twice as long..."""
    backoff_max: float = 3600.0
    """...but never longer than this."""
    give_up_after: float = 24 * 3600.0
    """Seconds after the order finished past which no attempt is made: given up."""

    def __post_init__(self) -> None:
        if not self.secret:
            raise ConfigError("[callbacks] needs a secret (or SKIPLINE_CALLBACK_SECRET)")
        for prefix in self.allow:
            scheme, _, rest = prefix.partition("://")
            if scheme not in ("http", "https") or "/" not in rest:
                raise ConfigError(f"[callbacks] allow: {prefix!r} must be an http(s) URL prefix "
                                  "ending in a path, e.g. 'https://hooks.example.com/'")
        if min(self.timeout, self.backoff_base, self.backoff_max, self.give_up_after) <= 0:
            raise ConfigError("[callbacks] timeout, backoff_base, backoff_max and "
                              "give_up_after must be > 0")

    def allows(self, url: str) -> bool:
        """True when `url` is http(s) without user info and starts with an allowed prefix
        (each prefix has a path, so 'https://a.example/' never matches a.example.evil)."""
        try:
            parts = urlsplit(url)
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
            return False
        return any(url.startswith(prefix) for prefix in self.allow)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a skipline process needs to know."""

    db: str = DEFAULT_DB
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 3
    handler: str = "simulate"
    """The function for the kind `default` ('simulate' or 'M:F'), unless `handlers` is set."""
    handlers: str | None = None
    """A `skipline.Handlers` registry ('M:ATTR'): the kinds this process serves."""
    drain_timeout: float = 20.0
    durability: Durability = "full"
    lease_seconds: float = 10.0
    """A claimed order's lease; the worker renews it every third of this."""
    heartbeats: bool = True
    """Renew leases while handlers run. Off only to show what leases protect against (fault
    tests): a handler longer than its lease then loses it and the order runs twice."""
    order_timeout: float = 3900.0
    """A handler running longer is cancelled and counts as a failed run."""
    max_attempts: int = 5
    max_rescues: int = 3
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    retention: float = DEFAULT_RETENTION
    """Seconds a finished order (succeeded, failed, cancelled) is kept after it finished, then
    deleted by the Pruner; 0 keeps finished orders forever."""
    max_body: int = 64 * 1024
    max_queued: int | None = None
    """Global cap on queued orders (all tiers): 503 + Retry-After beyond it."""
    allow_anonymous: bool = True
    anonymous_tier: str = ANONYMOUS_TIER
    """The tier of callers without a key; it must be one of `tiers`."""
    head_timeout: float = 10.0
    """Seconds a client has to send a whole request head, from connecting or from its first
    byte after a response; then 408 and the connection is closed."""
    body_timeout: float = 30.0
    """Seconds a client has to send a whole request body once it is being read; then 408."""
    keepalive_timeout: float = 75.0
    """Seconds an idle keep-alive connection is kept open between requests."""
    forwarded_allow_ips: tuple[str, ...] = ()
    """Proxies (addresses or networks, '*' for any) whose X-Forwarded-For names the client."""
    stats_ttl: float = MAX_STATS_TTL
    """Seconds one reading of the store's statistics serves /stats and /metrics."""
    tiers: dict[str, Tier] = field(default_factory=lambda: dict(DEFAULT_TIERS))
    callbacks: CallbackSettings | None = None
    """None: callbacks are off, and a `callback_url` is refused (422)."""

    def __post_init__(self) -> None:
        checks: list[tuple[bool, str]] = [
            (self.workers >= 0, "workers must be >= 0"),
            (1 <= self.port <= 65535, "port must be between 1 and 65535"),
            (self.drain_timeout >= 0, "drain_timeout must be >= 0"),
            (self.lease_seconds > 0, "lease_seconds must be > 0"),
            (self.order_timeout > 0, "order_timeout must be > 0"),
            (self.max_attempts >= 1, "max_attempts must be >= 1"),
            (self.max_rescues >= 0, "max_rescues must be >= 0"),
            (self.backoff_base >= 0, "backoff_base must be >= 0"),
            (math.isfinite(self.retention) and self.retention >= 0,
             "retention must be a number of seconds >= 0 (0 keeps finished orders forever)"),
            (self.max_body >= 1024, "max_body must be >= 1024 bytes"),
            (self.max_queued is None or self.max_queued >= 1, "max_queued must be >= 1"),
            (self.durability in ("full", "normal"), "durability must be 'full' or 'normal'"),
            (bool(self.tiers), "at least one tier must be configured"),
            (0 <= self.stats_ttl <= MAX_STATS_TTL,
             f"stats_ttl must be between 0 and {MAX_STATS_TTL:g} seconds"),
        ]
        checks += [
            (math.isfinite(value) and value > 0, f"{name} must be a number of seconds > 0")
            for name, value in (("head_timeout", self.head_timeout),
                                ("body_timeout", self.body_timeout),
                                ("keepalive_timeout", self.keepalive_timeout))
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        parse_networks(self.forwarded_allow_ips)
        self._check_anonymous_tier()

    def _check_anonymous_tier(self) -> None:
        """Anonymous callers need a configured tier (unless they are refused anyway)."""
        if self.allow_anonymous and self.anonymous_tier not in self.tiers:
            known = ", ".join(sorted(self.tiers))
            raise ConfigError(
                f"anonymous_tier {self.anonymous_tier!r} is not a configured tier ({known}): "
                "set anonymous_tier to one of them, or refuse anonymous callers"
            )

    def tier(self, name: str) -> Tier:
        return self.tiers[name]


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """What skipline.toml says: its tiers and, when it names one, the anonymous tier."""

    tiers: dict[str, Tier]
    anonymous_tier: str | None = None


def load_config_file(path: Path | None) -> ConfigFile:
    """`path`, or ./skipline.toml when it exists, else the defaults."""
    if path is None:
        default = Path(CONFIG_FILE)
        if not default.exists():
            return ConfigFile(dict(DEFAULT_TIERS))
        path = default
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {str(path)!r} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return ConfigFile(parse_tiers(data, str(path)), parse_anonymous_tier(data, str(path)))


def load_tiers(path: Path | None) -> dict[str, Tier]:
    """Tiers from `path`, or from ./skipline.toml when it exists, else the defaults."""
    return load_config_file(path).tiers


def parse_anonymous_tier(data: dict[str, Any], source: str = CONFIG_FILE) -> str | None:
    """The top-level `anonymous_tier = "NAME"`, if given (Settings checks that it exists)."""
    value = data.get("anonymous_tier")
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{source}: anonymous_tier must be a tier name, got {value!r}")
    return value


def tiers_from_text(text: str, source: str = "SKIPLINE_TIERS") -> dict[str, Tier]:
    """Tiers given inline as the body of a `[tiers]` table, e.g. from the environment:
    `vip = {priority = 0}` and `regular = {priority = 1, max_wait = 300}` on separate lines."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    return parse_tiers({"tiers": data}, source)


def parse_tiers(data: dict[str, Any], source: str = CONFIG_FILE) -> dict[str, Tier]:
    """Validate the `[tiers.NAME]` tables; every message names the key and the problem."""
    unknown = set(data) - TOP_LEVEL_KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    raw = data.get("tiers")
    if raw is None:
        return dict(DEFAULT_TIERS)
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{source}: 'tiers' must be a table with at least one tier")
    return {name: _parse_tier(name, table, source) for name, table in raw.items()}


def load_callbacks(path: Path | None, secret: str | None = None) -> CallbackSettings | None:
    """`[callbacks]` from `path` (or ./skipline.toml when it exists); `secret` (from
    SKIPLINE_CALLBACK_SECRET or --callback-secret) overrides the file's. None: no such table."""
    if path is None:
        path = Path(CONFIG_FILE)
        if not path.exists():
            return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None  # load_tiers reports an unreadable file
    return parse_callbacks(data.get("callbacks"), str(path), secret)


def parse_callbacks(
    table: Any, source: str = CONFIG_FILE, secret: str | None = None
) -> CallbackSettings | None:
    """Validate a `[callbacks]` table; every message names the key and the problem."""
    if table is None:
        return None
    where = f"{source}: callbacks"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(table) - CALLBACK_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    numbers = {key: _optional_number(table, key, where, minimum=0.0)
               for key in CALLBACK_KEYS - {"allow", "secret"}}
    return CallbackSettings(
        _callback_allow(table, where), _callback_secret(table, where, secret),
        **{key: value for key, value in numbers.items() if value is not None})


def _callback_allow(table: dict[str, Any], where: str) -> tuple[str, ...]:
    allow = table.get("allow", [])
    if not isinstance(allow, list) or not all(isinstance(url, str) for url in allow):
        raise ConfigError(f"{where}.allow must be a list of URL prefixes")
    return tuple(allow)


def _callback_secret(table: dict[str, Any], where: str, secret: str | None) -> str:
    given = secret or table.get("secret", "")
    if not isinstance(given, str):
        raise ConfigError(f"{where}.secret must be a string")
    return given


def _parse_tier(name: str, table: Any, source: str) -> Tier:
    where = f"{source}: tiers.{name}"
    if not name.replace("_", "").replace("-", "").isalnum() or len(name) > 32:
        raise ConfigError(f"{where}: tier names are letters, digits, '-' and '_' (at most 32)")
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(table) - TIER_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    if "priority" not in table:
        raise ConfigError(f"{where}.priority is required")
    priority = table["priority"]
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ConfigError(f"{where}.priority must be an integer, got {priority!r}")
    max_wait = _optional_number(table, "max_wait", where, minimum=0.0)
    max_queued = _optional_number(table, "max_queued", where, minimum=1.0, integer=True)
    fairness, per_customer = _fairness(table, where)
    return Tier(
        name, priority, max_wait,
        None if max_queued is None else int(max_queued),
        _rate_limit(table, where),
        fairness, per_customer,
    )


def _fairness(table: dict[str, Any], where: str) -> tuple[Fairness, int | None]:
    """`fairness` ('customers' by default, or 'fifo') and `max_queued_per_customer`, which
    needs groups to count."""
    value = table.get("fairness", "customers")
    modes = [mode for mode in FAIRNESS_MODES if value == mode]
    if not modes:
        raise ConfigError(f"{where}.fairness must be 'customers' or 'fifo', got {value!r}")
    cap = _optional_number(table, "max_queued_per_customer", where, minimum=1.0, integer=True)
    if modes[0] == "fifo" and cap is not None:
        raise ConfigError(f"{where}.max_queued_per_customer needs fairness = 'customers'")
    return modes[0], None if cap is None else int(cap)


def _rate_limit(table: dict[str, Any], where: str) -> RateLimit | None:
    """`rate_limit` (orders per second, > 0) and `burst` (orders at once; by default the rate
    rounded up, at least 1). A burst without a rate is refused rather than ignored."""
    rate = _optional_number(table, "rate_limit", where, minimum=0.0)
    burst = _optional_number(table, "burst", where, minimum=1.0, integer=True)
    if rate is None:
        if burst is not None:
            raise ConfigError(f"{where}.burst needs a rate_limit")
        return None
    if rate <= 0:
        raise ConfigError(f"{where}.rate_limit must be > 0, got {table['rate_limit']!r}")
    return RateLimit(rate, int(burst) if burst is not None else max(1, math.ceil(rate)))


def _optional_number(
    table: dict[str, Any], key: str, where: str, minimum: float, integer: bool = False
) -> float | None:
    if key not in table:
        return None
    value = table[key]
    right_kind = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not right_kind:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{where}.{key} must be {kind}, got {value!r}")
    number = float(value)
    if number < minimum:
        raise ConfigError(f"{where}.{key} must be >= {minimum:g}, got {value!r}")
    return number
