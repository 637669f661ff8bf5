"""Tiers from skipline.toml and the Settings object: every mistake is a ConfigError whose
message names the key and the problem."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from skipline.cli.options import build_settings
from skipline.config import Settings, load_config_file, load_tiers, parse_tiers
from skipline.domain.errors import ConfigError
from skipline.domain.models import DEFAULT_TIERS, Tier
from skipline.domain.ratelimit import RateLimit

GOOD_TOML = """
[tiers.vip]
priority = 0

[tiers.regular]
priority = 1
max_wait = 300

[tiers.bulk]
priority = 5
max_wait = 0.5
max_queued = 100000
"""


# --- parse_tiers ----------------------------------------------------------------------------------
def test_a_valid_table_gives_tiers() -> None:
    tiers = parse_tiers({"tiers": {"vip": {"priority": 0}, "bulk": {
        "priority": 5, "max_wait": 2, "max_queued": 10}}})

    assert tiers == {
        "vip": Tier("vip", 0, None, None),
        "bulk": Tier("bulk", 5, 2.0, 10),
    }


def test_a_rate_limit_has_a_burst_that_defaults_to_the_rate_rounded_up() -> None:
    tiers = parse_tiers({"tiers": {
        "vip": {"priority": 0, "rate_limit": 50, "burst": 200},
        "regular": {"priority": 1, "rate_limit": 2.5},
        "slow": {"priority": 2, "rate_limit": 0.1},
    }})

    assert tiers["vip"].rate_limit == RateLimit(50.0, 200)
    assert tiers["regular"].rate_limit == RateLimit(2.5, 3)
    assert tiers["slow"].rate_limit == RateLimit(0.1, 1)
    assert DEFAULT_TIERS["regular"].rate_limit is None


def test_no_tiers_table_means_the_defaults() -> None:
    assert parse_tiers({}) == DEFAULT_TIERS


def test_fairness_is_customers_unless_a_tier_asks_for_fifo() -> None:
    tiers = parse_tiers({"tiers": {
        "vip": {"priority": 0, "fairness": "fifo"},
        "regular": {"priority": 1, "max_queued_per_customer": 500},
    }})

    assert tiers["vip"].fairness == "fifo"
    assert tiers["vip"].max_queued_per_customer is None
    assert tiers["regular"].fairness == "customers"
    assert tiers["regular"].max_queued_per_customer == 500
    assert DEFAULT_TIERS["regular"].fairness == "customers"


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        ({"tier": {}}, ["unknown top-level key", "tier"]),
        ({"tiers": {}}, ["'tiers'", "at least one tier"]),
        ({"tiers": "vip"}, ["'tiers'", "must be a table"]),
        ({"tiers": {"vip": 0}}, ["tiers.vip", "must be a table"]),
        ({"tiers": {"vip": {"priority": 0, "colour": "gold"}}}, ["tiers.vip", "unknown key",
                                                                 "colour"]),
        ({"tiers": {"vip": {"max_wait": 5}}}, ["tiers.vip.priority", "required"]),
        ({"tiers": {"vip": {"priority": "high"}}}, ["tiers.vip.priority", "integer", "'high'"]),
        ({"tiers": {"vip": {"priority": True}}}, ["tiers.vip.priority", "integer"]),
        ({"tiers": {"vip": {"priority": 0.5}}}, ["tiers.vip.priority", "integer"]),
        ({"tiers": {"vip": {"priority": 0, "max_wait": -1}}}, ["tiers.vip.max_wait", ">= 0",
                                                              "-1"]),
        ({"tiers": {"vip": {"priority": 0, "max_wait": "5m"}}}, ["tiers.vip.max_wait",
                                                                 "a number"]),
        ({"tiers": {"vip": {"priority": 0, "max_queued": 0}}}, ["tiers.vip.max_queued",
                                                                ">= 1"]),
        ({"tiers": {"vip": {"priority": 0, "max_queued": 2.5}}}, ["tiers.vip.max_queued",
                                                                  "an integer"]),
        ({"tiers": {"vip": {"priority": 0, "rate_limit": 0}}}, ["tiers.vip.rate_limit", "> 0"]),
        ({"tiers": {"vip": {"priority": 0, "rate_limit": -5}}}, ["tiers.vip.rate_limit", "-5"]),
        ({"tiers": {"vip": {"priority": 0, "rate_limit": "10/s"}}}, ["tiers.vip.rate_limit",
                                                                     "a number"]),
        ({"tiers": {"vip": {"priority": 0, "burst": 10}}}, ["tiers.vip.burst",
                                                            "needs a rate_limit"]),
        ({"tiers": {"vip": {"priority": 0, "rate_limit": 5, "burst": 0}}}, ["tiers.vip.burst",
                                                                            ">= 1"]),
        ({"tiers": {"vip": {"priority": 0, "rate_limit": 5, "burst": 2.5}}}, ["tiers.vip.burst",
                                                                              "an integer"]),
        ({"tiers": {"vip": {"priority": 0, "fairness": "random"}}}, ["tiers.vip.fairness",
                                                                     "'customers' or 'fifo'"]),
        ({"tiers": {"vip": {"priority": 0, "max_queued_per_customer": 0}}}, [
            "tiers.vip.max_queued_per_customer", ">= 1"]),
        ({"tiers": {"vip": {"priority": 0, "fairness": "fifo", "max_queued_per_customer": 5}}},
         ["tiers.vip.max_queued_per_customer", "fairness = 'customers'"]),
        ({"tiers": {"v i p": {"priority": 0}}}, ["tiers.v i p", "letters, digits"]),
        ({"tiers": {"x" * 33: {"priority": 0}}}, ["at most 32"]),
    ],
)
def test_every_mistake_names_the_key_and_the_problem(
    data: dict[str, Any], fragments: list[str],
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_tiers(data, "my.toml")

    message = str(caught.value)
    assert message.startswith("my.toml")
    for fragment in fragments:
        assert fragment in message


# --- load_tiers -----------------------------------------------------------------------------------
def test_a_config_file_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "tiers.toml"
    path.write_text(GOOD_TOML, encoding="utf-8")

    tiers = load_tiers(path)

    assert list(tiers) == ["vip", "regular", "bulk"]
    assert tiers["bulk"] == Tier("bulk", 5, 0.5, 100_000)
    assert tiers["regular"].max_wait == 300.0


def test_without_a_file_the_defaults_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    assert load_tiers(None) == DEFAULT_TIERS


def test_skipline_toml_in_the_working_directory_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "skipline.toml").write_text(GOOD_TOML, encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    assert set(load_tiers(None)) == {"vip", "regular", "bulk"}


def test_bad_toml_names_the_file_and_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[tiers.vip\npriority = 0\n", encoding="utf-8")

    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        load_tiers(path)

    assert str(path) in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"

    with pytest.raises(ConfigError, match="does not exist") as caught:
        load_tiers(path)

    assert "nowhere.toml" in str(caught.value)


def test_a_mistake_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tiers.toml"
    path.write_text("[tiers.vip]\npriority = 0\nmax_wait = -3\n", encoding="utf-8")

    with pytest.raises(ConfigError, match=r"tiers\.vip\.max_wait must be >= 0") as caught:
        load_tiers(path)

    assert str(path) in str(caught.value)


# --- Settings -------------------------------------------------------------------------------------
def test_the_defaults_are_valid_and_safe() -> None:
    settings = Settings()

    assert settings.durability == "full"
    assert settings.db == "sqlite:///./skipline.db"
    assert settings.drain_timeout == 20.0
    assert settings.max_body == 64 * 1024
    assert settings.allow_anonymous is True
    assert settings.tier("vip").priority < settings.tier("regular").priority


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("workers", -1, "workers must be >= 0"),
        ("port", 0, "port must be between 1 and 65535"),
        ("port", 70000, "port must be between 1 and 65535"),
        ("drain_timeout", -0.1, "drain_timeout must be >= 0"),
        ("lease_seconds", 0, "lease_seconds must be > 0"),
        ("order_timeout", 0, "order_timeout must be > 0"),
        ("max_attempts", 0, "max_attempts must be >= 1"),
        ("max_rescues", -1, "max_rescues must be >= 0"),
        ("backoff_base", -1, "backoff_base must be >= 0"),
        ("max_body", 100, "max_body must be >= 1024"),
        ("max_queued", 0, "max_queued must be >= 1"),
        ("durability", "off", "durability must be 'full' or 'normal'"),
        ("tiers", {}, "at least one tier"),
        ("head_timeout", 0, "head_timeout must be a number of seconds > 0"),
        ("body_timeout", float("inf"), "body_timeout must be a number of seconds > 0"),
        ("keepalive_timeout", -1, "keepalive_timeout must be a number of seconds > 0"),
        ("stats_ttl", 1.5, "stats_ttl must be between 0 and 1 seconds"),
        ("forwarded_allow_ips", ("10.0.0.0/8", "proxy.local"), "'proxy.local' is not an IP"),
        ("anonymous_tier", "gold", "anonymous_tier 'gold' is not a configured tier"),
    ],
)
def test_each_invalid_setting_is_refused_by_name(field: str, value: Any, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Settings(**{field: value})


def test_retention_defaults_to_a_week_and_0_keeps_forever() -> None:
    assert Settings().retention == 7 * 24 * 3600
    assert Settings(retention=0).retention == 0
    assert Settings(retention=0.5).retention == 0.5


@pytest.mark.parametrize("value", [-1, -0.001, float("inf"), float("nan")])
def test_a_retention_that_is_not_seconds_is_refused(value: float) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings(retention=value)

    message = str(caught.value)
    assert "retention must be a number of seconds >= 0" in message
    assert "0 keeps finished orders forever" in message


def test_boundary_settings_are_accepted() -> None:
    settings = Settings(workers=0, port=65535, drain_timeout=0, max_rescues=0, max_body=1024,
                        max_queued=1, durability="normal")

    assert (settings.workers, settings.max_queued, settings.durability) == (0, 1, "normal")


# --- the anonymous tier ---------------------------------------------------------------------------
GOLD_AND_SILVER = {"gold": Tier("gold", 0), "silver": Tier("silver", 1)}


def test_tiers_without_the_anonymous_tier_are_refused_naming_it() -> None:
    with pytest.raises(ConfigError, match="anonymous_tier 'regular' is not a configured tier "
                                          r"\(gold, silver\)"):
        Settings(tiers=GOLD_AND_SILVER)


def test_the_anonymous_tier_may_be_any_configured_tier() -> None:
    assert Settings(tiers=GOLD_AND_SILVER, anonymous_tier="silver").anonymous_tier == "silver"


def test_without_anonymous_callers_the_anonymous_tier_does_not_matter() -> None:
    assert not Settings(tiers=GOLD_AND_SILVER, allow_anonymous=False).allow_anonymous


def test_the_file_names_the_anonymous_tier_at_the_top_level(tmp_path: Path) -> None:
    path = tmp_path / "skipline.toml"
    path.write_text('anonymous_tier = "silver"\n[tiers.gold]\npriority = 0\n'
                    "[tiers.silver]\npriority = 1\n", encoding="utf-8")
    loaded = load_config_file(path)
    assert loaded.anonymous_tier == "silver" and set(loaded.tiers) == {"gold", "silver"}
    assert build_settings(path).anonymous_tier == "silver"
    assert build_settings(path, anonymous_tier="gold").anonymous_tier == "gold"  # the flag wins


@pytest.mark.parametrize("value", ["1", "''", "['a']"])
def test_an_anonymous_tier_that_is_no_name_is_refused(tmp_path: Path, value: str) -> None:
    path = tmp_path / "skipline.toml"
    path.write_text(f"anonymous_tier = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="anonymous_tier must be a tier name"):
        load_config_file(path)
