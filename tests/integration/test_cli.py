"""The CLI's parsing, environment variables, configuration errors and key management, through
click's CliRunner (in process) and, where a real stderr or exit code matters, a subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from skipline.auth import hash_secret
from skipline.cli.main import cli
from skipline.testing import free_port


@pytest.fixture(autouse=True)
def no_skipline_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings must come from the test alone, not from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("SKIPLINE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, so no stray ./skipline.toml is read."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def checked_settings(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = invoke(*args, "--check", env=env)
    assert result.exit_code == 0, result.output
    settings: dict[str, Any] = json.loads(result.stdout)
    return settings


def assert_config_error(result: Result, *fragments: str) -> None:
    """Exit 2, one clear line on stderr naming the problem, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# --- settings from flags, environment and skipline.toml -------------------------------------
def test_environment_variables_reach_settings(workdir: Path) -> None:
    env = {
        "SKIPLINE_WORKERS": "7", "SKIPLINE_DRAIN_TIMEOUT": "3.5", "SKIPLINE_DB": "memory://",
        "SKIPLINE_NO_ANONYMOUS": "1", "SKIPLINE_LEASE_SECONDS": "4", "SKIPLINE_PORT": "9191",
        "SKIPLINE_DURABILITY": "normal", "SKIPLINE_MAX_QUEUED": "50",
    }
    settings = checked_settings("serve", env=env)
    assert settings["workers"] == 7
    assert settings["drain_timeout"] == 3.5
    assert settings["db"] == "memory://"
    assert settings["allow_anonymous"] is False
    assert settings["lease_seconds"] == 4.0
    assert settings["port"] == 9191
    assert settings["durability"] == "normal"
    assert settings["max_queued"] == 50


def test_the_dashboard_mode_comes_from_the_file_the_environment_or_the_flag(
    workdir: Path,
) -> None:
    assert checked_settings("serve")["dashboard"] == "public"
    (workdir / "skipline.toml").write_text('dashboard = "admin"\n', encoding="utf-8")
    assert checked_settings("serve")["dashboard"] == "admin"
    env = {"SKIPLINE_DASHBOARD": "public"}
    assert checked_settings("serve", env=env)["dashboard"] == "public"
    assert checked_settings("serve", "--dashboard", "admin", env=env)["dashboard"] == "admin"
    (workdir / "skipline.toml").write_text('dashboard = "open"\n', encoding="utf-8")
    assert_config_error(invoke("serve", "--check"), "dashboard must be 'public' or 'admin'")


def test_connection_limits_and_proxies_come_from_flags_and_environment(workdir: Path) -> None:
    env = {"SKIPLINE_HEAD_TIMEOUT": "4", "SKIPLINE_KEEPALIVE_TIMEOUT": "30",
           "SKIPLINE_FORWARDED_ALLOW_IPS": "10.0.0.0/8, ::1", "SKIPLINE_ANONYMOUS_TIER": "vip"}
    settings = checked_settings("serve", "--body-timeout", "12", env=env)
    assert (settings["head_timeout"], settings["body_timeout"]) == (4.0, 12.0)
    assert settings["keepalive_timeout"] == 30.0
    assert settings["forwarded_allow_ips"] == ["10.0.0.0/8", "::1"]
    assert settings["anonymous_tier"] == "vip"
    defaults = checked_settings("serve")
    assert (defaults["head_timeout"], defaults["body_timeout"]) == (10.0, 30.0)
    assert defaults["keepalive_timeout"] == 75.0 and defaults["forwarded_allow_ips"] == []


def test_flags_beat_environment_variables(workdir: Path) -> None:
    settings = checked_settings("serve", "--workers", "2", env={"SKIPLINE_WORKERS": "7"})
    assert settings["workers"] == 2


def test_defaults_without_flags_or_environment(workdir: Path) -> None:
    settings = checked_settings("serve")
    assert settings["workers"] == 3
    assert settings["port"] == 8080
    assert settings["db"] == "sqlite:///./skipline.db"
    assert settings["allow_anonymous"] is True
    assert settings["drain_timeout"] == 20.0
    assert set(settings["tiers"]) == {"vip", "regular"}


def test_worker_concurrency_from_environment(workdir: Path) -> None:
    settings = checked_settings("worker", env={"SKIPLINE_CONCURRENCY": "4"})
    assert settings["workers"] == 4


def test_retention_flag_and_environment_on_serve_and_worker(workdir: Path) -> None:
    assert checked_settings("serve")["retention"] == 604800.0
    assert checked_settings("serve", "--retention", "3600")["retention"] == 3600.0
    assert checked_settings("worker", "--retention", "0")["retention"] == 0.0
    env = {"SKIPLINE_RETENTION": "86400"}
    assert checked_settings("worker", env=env)["retention"] == 86400.0
    assert checked_settings("serve", "--retention", "60", env=env)["retention"] == 60.0
    assert "SKIPLINE_RETENTION" in invoke("worker", "--help").output


def test_a_negative_retention_exits_2(workdir: Path) -> None:
    assert_config_error(invoke("serve", "--check", "--retention", "-5"),
                        "retention must be a number of seconds >= 0")
    assert_config_error(invoke("worker", "--check", env={"SKIPLINE_RETENTION": "inf"}),
                        "retention must be a number of seconds >= 0")
    result = invoke("serve", "--check", "--retention", "7d")
    assert result.exit_code == 2
    assert "7d" in result.stderr


def test_tiers_come_from_skipline_toml_in_the_working_directory(workdir: Path) -> None:
    (workdir / "skipline.toml").write_text(
        'anonymous_tier = "bronze"\n'
        "[tiers.gold]\npriority = 0\n[tiers.bronze]\npriority = 5\nmax_wait = 60\n"
    )
    settings = checked_settings("serve")
    assert set(settings["tiers"]) == {"gold", "bronze"}
    assert settings["tiers"]["bronze"]["max_wait"] == 60.0
    assert settings["anonymous_tier"] == "bronze"


def test_config_flag_and_its_environment_variable(workdir: Path) -> None:
    other = workdir / "elsewhere.toml"
    other.write_text('anonymous_tier = "only"\n[tiers.only]\npriority = 3\n')
    assert set(checked_settings("serve", "--config", str(other))["tiers"]) == {"only"}
    from_env = checked_settings("serve", env={"SKIPLINE_CONFIG": str(other)})
    assert set(from_env["tiers"]) == {"only"}


def test_tiers_from_the_environment_override_the_file(workdir: Path) -> None:
    (workdir / "skipline.toml").write_text(
        'anonymous_tier = "from_file"\n[tiers.from_file]\npriority = 0\n')
    inline = "gold = {priority = 0}\nregular = {priority = 1, max_wait = 60, max_queued = 5}"
    tiers = checked_settings("serve", env={"SKIPLINE_TIERS": inline})["tiers"]
    assert set(tiers) == {"gold", "regular"}
    assert tiers["regular"]["max_queued"] == 5
    assert tiers["regular"]["max_wait"] == 60.0


def test_bad_tiers_in_the_environment_exit_2_naming_the_key(workdir: Path) -> None:
    result = invoke("serve", "--check", env={"SKIPLINE_TIERS": "gold = {prio = 0}"})
    assert_config_error(result, "SKIPLINE_TIERS", "tiers.gold", "prio")


def test_check_hides_the_database_password(workdir: Path) -> None:
    settings = checked_settings("serve", "--db", "postgresql://app:s3cret@db.example:5432/q")
    assert "s3cret" not in json.dumps(settings)
    assert settings["db"] == "postgresql://app:***@db.example:5432/q"


def test_a_worker_takes_its_metrics_address_from_flags_or_environment(workdir: Path) -> None:
    assert checked_settings("worker", "--db", "memory://")["metrics_port"] is None
    flags = checked_settings("worker", "--db", "memory://", "--metrics-port", "9101",
                             "--metrics-host", "0.0.0.0")
    assert (flags["metrics_host"], flags["metrics_port"]) == ("0.0.0.0", 9101)
    env = checked_settings("worker", "--db", "memory://", env={"SKIPLINE_METRICS_PORT": "9102"})
    assert env["metrics_port"] == 9102
    assert_config_error(invoke("worker", "--db", "memory://", "--metrics-port", "0", "--check"),
                        "metrics_port")


def test_help_shows_environment_variables() -> None:
    result = invoke("serve", "--help")
    assert result.exit_code == 0
    for name in ("SKIPLINE_DB", "SKIPLINE_WORKERS", "SKIPLINE_DRAIN_TIMEOUT", "SKIPLINE_PORT"):
        assert name in result.output


# --- invalid configuration: exit 2, one line, no traceback ----------------------------------
def test_bad_skipline_toml_exits_2_naming_the_key(workdir: Path) -> None:
    (workdir / "skipline.toml").write_text('[tiers.vip]\npriority = "high"\n')
    assert_config_error(invoke("serve", "--check"), "tiers.vip.priority", "integer")


def test_unparseable_skipline_toml_exits_2(workdir: Path) -> None:
    (workdir / "skipline.toml").write_text("[tiers.vip\n")
    assert_config_error(invoke("serve", "--check"), "skipline.toml", "not valid TOML")


def test_missing_config_file_exits_2(workdir: Path) -> None:
    result = invoke("serve", "--check", "--config", "nope.toml")
    assert_config_error(result, "nope.toml", "does not exist")


def test_invalid_setting_values_exit_2(workdir: Path) -> None:
    assert_config_error(invoke("serve", "--check", "--workers", "-1"), "workers must be >= 0")
    assert_config_error(
        invoke("serve", "--check", env={"SKIPLINE_LEASE_SECONDS": "0"}),
        "lease_seconds must be > 0",
    )
    assert_config_error(invoke("worker", "--check", "--concurrency", "0"), "--concurrency")


def test_unsupported_db_url_exits_2(workdir: Path) -> None:
    result = invoke("serve", "--check", "--db", "mysql://localhost/x")
    assert_config_error(result, "unsupported --db URL")
    assert_config_error(invoke("keys", "list", "--db", "sqlite://"), "names no file")


def test_unknown_handler_exits_2(workdir: Path) -> None:
    result = invoke("serve", "--check", "--handler", "no_such_module_xyz:run")
    assert_config_error(result, "no_such_module_xyz", "not found")


def test_the_installed_script_finds_a_handler_in_the_working_directory(tmp_path: Path) -> None:
    """README's handler example, followed literally: ./shop/handlers.py, no PYTHONPATH, the
    `skipline` script (not `python -m`, which would put the directory on the path itself)."""
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "handlers.py").write_text(
        "async def ship(order):\n    return {'shipped': order.id}\n", encoding="utf-8")
    script = Path(sys.executable).parent / "skipline"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SKIPLINE_") and k != "PYTHONPATH"}
    result = subprocess.run(
        [str(script), "serve", "--check", "--handler", "shop.handlers:ship"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["handler"] == "shop.handlers:ship"


def test_non_integer_flag_is_a_usage_error(workdir: Path) -> None:
    result = invoke("serve", "--check", "--port", "eighty")
    assert result.exit_code == 2
    assert "eighty" in result.stderr


# --- keys ----------------------------------------------------------------------------------
def test_keys_add_list_revoke(workdir: Path) -> None:
    db = f"sqlite:///{workdir / 'keys.db'}"
    added = invoke("keys", "add", "alice", "--tier", "vip", "--admin", "--db", db)
    assert added.exit_code == 0, added.output
    secret = added.stdout.strip()
    assert secret.startswith("sk_") and len(secret) > 40
    assert "shown only once" in added.stderr
    assert secret not in added.stderr

    listed = invoke("keys", "list", env={"SKIPLINE_DB": db})
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if "alice" in line)
    assert "vip" in row and "yes" in row
    assert secret not in listed.stdout and hash_secret(secret) not in listed.stdout

    revoked = invoke("keys", "revoke", "alice", "--db", db)
    assert revoked.exit_code == 0, revoked.output
    row = next(line for line in invoke("keys", "list", "--db", db).stdout.splitlines()
               if "alice" in line)
    assert row.rstrip(" │|").endswith("yes")


def test_keys_add_with_customers_and_a_weight_shows_in_the_list(workdir: Path) -> None:
    db = f"sqlite:///{workdir / 'keys.db'}"
    added = invoke("keys", "add", "shop", "--tier", "regular", "--customers", "--weight", "3",
                   "--db", db)
    assert added.exit_code == 0, added.output
    assert "customers" in added.stderr and "weight 3" in added.stderr
    assert invoke("keys", "add", "plain", "--tier", "regular", "--db", db).exit_code == 0

    listed = invoke("keys", "list", "--db", db)

    assert "customers" in listed.stdout and "weight" in listed.stdout
    shop = next(line for line in listed.stdout.splitlines() if "shop" in line)
    plain = next(line for line in listed.stdout.splitlines() if "plain" in line)
    assert [cell.strip() for cell in shop.split("│")][4:6] == ["yes", "3"]
    assert [cell.strip() for cell in plain.split("│")][4:6] == ["no", "1"]


def test_keys_add_refuses_a_weight_out_of_range(workdir: Path) -> None:
    result = invoke("keys", "add", "x", "--tier", "regular", "--weight", "0", "--db", "memory://")
    assert result.exit_code == 2
    assert "--weight" in result.stderr


def test_keys_add_help_explains_customers_and_weight() -> None:
    result = invoke("keys", "add", "--help")
    assert result.exit_code == 0
    for words in ("--customers", "--weight", "fair-share", "customer"):
        assert words in result.output


def test_keys_add_twice_fails(workdir: Path) -> None:
    db = f"sqlite:///{workdir / 'keys.db'}"
    assert invoke("keys", "add", "bob", "--tier", "regular", "--db", db).exit_code == 0
    again = invoke("keys", "add", "bob", "--tier", "regular", "--db", db)
    assert again.exit_code == 1
    assert "bob" in again.stderr and again.stdout == ""


def test_keys_add_unknown_tier_exits_2(workdir: Path) -> None:
    result = invoke("keys", "add", "carol", "--tier", "platinum", "--db", "memory://")
    assert result.exit_code == 2
    assert "platinum" in result.stderr and "regular, vip" in result.stderr


def test_keys_add_with_a_bad_name_exits_2(workdir: Path) -> None:
    result = invoke("keys", "add", "x" * 65, "--tier", "regular", "--db", "memory://")
    assert result.exit_code == 2
    assert "key names are 1 to 64 printable characters" in result.stderr


def test_keys_tiers_come_from_the_configuration(workdir: Path) -> None:
    (workdir / "skipline.toml").write_text("[tiers.platinum]\npriority = 0\n")
    db = f"sqlite:///{workdir / 'keys.db'}"
    assert invoke("keys", "add", "dave", "--tier", "platinum", "--db", db).exit_code == 0
    refused = invoke("keys", "add", "erin", "--tier", "vip", "--db", db)
    assert refused.exit_code == 2 and "platinum" in refused.stderr


def test_keys_revoke_unknown_name_exits_1(workdir: Path) -> None:
    db = f"sqlite:///{workdir / 'keys.db'}"
    assert invoke("keys", "add", "somebody", "--tier", "regular", "--db", db).exit_code == 0
    result = invoke("keys", "revoke", "nobody", "--db", db)
    assert result.exit_code == 1
    assert "no API key named 'nobody'" in result.stderr


def test_keys_with_an_unopenable_store_exit_1(workdir: Path) -> None:
    blocker = workdir / "a-file"
    blocker.write_text("not a directory")
    result = invoke("keys", "list", "--db", f"sqlite:///{blocker / 'x.db'}")
    assert result.exit_code == 1
    assert "cannot open the store" in result.stderr
    assert "Traceback" not in result.output


# --- HTTP clients, without a server ---------------------------------------------------------
def test_submit_to_nothing_listening_exits_1() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["submit"], ["status", "some-id"], ["stats"]):
        result = invoke(*args, "--url", url)
        assert result.exit_code == 1
        assert f"cannot reach {url}" in result.stderr
        assert "Traceback" not in result.output


def test_submit_payload_must_be_json() -> None:
    result = invoke("submit", "--payload", "{not json", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "--payload" in result.stderr and "not valid JSON" in result.stderr


# --- a real process: serve with a store that cannot open ------------------------------------
def test_serve_with_an_unopenable_store_exits_1_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKIPLINE_")}
    result = subprocess.run(
        [sys.executable, "-m", "skipline", "serve", "--port", str(free_port()),
         "--db", f"sqlite:///{blocker / 'x.db'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "cannot open the store" in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_bad_configuration_exits_2_before_starting(tmp_path: Path) -> None:
    (tmp_path / "skipline.toml").write_text("[tiers.vip]\nweight = 3\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKIPLINE_")}
    result = subprocess.run(
        [sys.executable, "-m", "skipline", "serve", "--port", str(free_port())],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "skipline: error: skipline.toml: tiers.vip: unknown key(s) weight"
    ]
    assert not (tmp_path / "skipline.db").exists()


def test_serve_on_a_taken_port_exits_1(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKIPLINE_")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "skipline", "serve", "--port", str(port), "--db", "memory://"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
        )
    assert result.returncode == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


# --- first steps: stumbles a newcomer hit -----------------------------------------------------
def test_a_url_without_a_scheme_says_to_add_http() -> None:
    for command in (["submit"], ["status", "some-id"], ["stats"], ["bench"]):
        result = invoke(*command, "--url", "127.0.0.1:8080")
        assert result.exit_code == 2
        assert "'127.0.0.1:8080' has no scheme: write it as http://127.0.0.1:8080" in result.stderr


def test_a_sqlite_file_in_a_missing_directory_is_refused(workdir: Path) -> None:
    db = f"sqlite:///{workdir / 'no' / 'such' / 'x.db'}"
    for command in (["serve", "--port", str(free_port())], ["worker"],
                    ["keys", "add", "acme", "--tier", "vip"], ["keys", "list"]):
        result = invoke(*command, "--db", db)
        assert result.exit_code == 2, (command, result.output)
        assert f"the directory {workdir / 'no' / 'such'} does not exist" in result.stderr
    assert not (workdir / "no").exists()
    checked = invoke("serve", "--db", db, "--check")
    assert checked.exit_code == 2 and "does not exist" in checked.stderr


def test_keys_list_elsewhere_does_not_create_an_empty_database(workdir: Path) -> None:
    for command in (["keys", "list"], ["keys", "revoke", "acme"]):
        result = invoke(*command)
        assert result.exit_code == 2
        assert f"no database at {workdir / 'skipline.db'}" in result.stderr
        assert "--db" in result.stderr
    assert not (workdir / "skipline.db").exists()


def test_keys_commands_say_which_database_they_opened(workdir: Path) -> None:
    added = invoke("keys", "add", "acme", "--tier", "vip", "--db", "sqlite:///./k.db")
    assert added.exit_code == 0
    assert f"database: {workdir / 'k.db'}" in added.stderr
    assert added.stdout.strip().startswith("sk_") and "database" not in added.stdout


def all_commands() -> list[list[str]]:
    found: list[list[str]] = [[]]
    for name, command in cli.commands.items():
        found.append([name])
        for sub in getattr(command, "commands", {}):
            found.append([name, sub])
    return found


def test_every_help_ends_with_examples() -> None:
    for path in all_commands():
        result = invoke(*path, "--help")
        assert result.exit_code == 0
        examples = result.stdout.split("Examples:", 1)
        assert len(examples) == 2, f"skipline {' '.join(path)} --help has no examples"
        assert "skipline " in examples[1]


def test_shell_completion_is_documented_and_works() -> None:
    assert '_SKIPLINE_COMPLETE=bash_source skipline' in invoke("--help").stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKIPLINE_")}
    script = subprocess.run(
        [sys.executable, "-m", "skipline"], env={**env, "_SKIPLINE_COMPLETE": "bash_source"},
        capture_output=True, text=True, timeout=30,
    )
    assert "complete -o nosort -F _skipline_completion" in script.stdout
    words = subprocess.run(
        [sys.executable, "-m", "skipline"],
        env={**env, "_SKIPLINE_COMPLETE": "bash_complete", "COMP_WORDS": "skipline ser",
             "COMP_CWORD": "1"},
        capture_output=True, text=True, timeout=30,
    )
    assert "plain,serve" in words.stdout


def test_the_log_format_comes_from_the_environment_too(tmp_path: Path) -> None:
    """SKIPLINE_LOG_FORMAT=json: even a start that fails (a taken port) logs JSON lines."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKIPLINE_")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "skipline", "serve", "--port", str(port), "--db", "memory://"],
            cwd=tmp_path, env={**env, "SKIPLINE_LOG_FORMAT": "json"}, capture_output=True,
            text=True, timeout=30,
        )
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert lines[-1]["level"] == "error"
    assert f"cannot listen on 127.0.0.1:{port}" in lines[-1]["message"]
