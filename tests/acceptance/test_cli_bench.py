"""`skipline bench` against real `skipline serve` processes over real sockets: its figures agree
with each other and with the server's own /stats, refusals are counted without failing the
run, and an unreachable server or an unfinished order makes it exit 1."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from skipline.cli.main import cli
from skipline.testing import free_port
from tests.acceptance.processes import Launcher


async def bench_json(launcher: Launcher, url: str, *args: str, code: int = 0) -> dict[str, Any]:
    result = await launcher.cli("bench", "--url", url, "--json", *args, check=False)
    assert result.returncode == code, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


async def test_bench_reports_consistent_figures_for_200_orders(launcher: Launcher) -> None:
    server = await launcher.serve("--workers", "4")
    report = await bench_json(launcher, server.url, "--orders", "200", "--connections", "8")

    submit, finish = report["submit"], report["finish"]
    assert report["ok"] is True and report["problems"] == []
    assert (report["orders"], report["concurrency"]) == (200, 8)
    assert submit["statuses"] == {"202": 200, "503": 0, "no_answer": 0}
    assert (submit["sent"], submit["not_sent"]) == (200, 0)
    assert submit["seconds"] > 0 and submit["per_second"] == submit["accepted_per_second"] > 0
    latency = submit["latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert finish == {**finish, "succeeded": 200, "failed": 0, "cancelled": 0,
                      "unfinished": 0, "lost": 0}
    assert finish["seconds"] > 0 and finish["per_second"] > 0
    assert finish["per_second"] == pytest.approx(200 / finish["seconds"], rel=0.01)

    async with aiohttp.ClientSession() as http, http.get(server.url + "/stats") as response:
        regular = (await response.json())["tiers"]["regular"]
    assert (regular["succeeded"], regular["queued"], regular["running"]) == (200, 0, 0)


async def test_the_table_is_the_default_output(launcher: Launcher) -> None:
    server = await launcher.serve("--workers", "2")
    result = await launcher.cli("bench", "--url", server.url, "--orders", "20",
                                "--connections", "4", "--duration", "0.01")
    for fragment in ("202: 20", "no answer: 0", "p50", "max", "succeeded 20", "lost 0"):
        assert fragment in result.stdout, result.stdout
    assert result.stdout.rstrip().endswith("ok") and result.stderr == ""


async def test_refusals_are_counted_once_not_resent_and_are_no_failure(
    launcher: Launcher,
) -> None:
    server = await launcher.serve("--no-workers", "--max-queued", "10")
    refused = await bench_json(launcher, server.url, "--orders", "60", "--connections", "4",
                               "--no-wait")
    statuses = refused["submit"]["statuses"]
    assert statuses["202"] >= 10 and statuses["503"] >= 1
    assert statuses["202"] + statuses["503"] == 60 and statuses["no_answer"] == 0
    assert refused["finish"] is None and refused["ok"] is True

    full = await bench_json(launcher, server.url, "--orders", "5")
    assert full["submit"]["statuses"]["503"] == 5 and full["submit"]["latency_ms"] is None
    assert full["finish"]["succeeded"] == 0 and full["ok"] is True


async def test_orders_not_final_within_the_timeout_fail_the_run(launcher: Launcher) -> None:
    server = await launcher.serve("--no-workers")
    result = await launcher.cli("bench", "--url", server.url, "--orders", "5", "--json",
                                "--timeout", "1.5", check=False)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["submit"]["statuses"]["202"] == report["finish"]["unfinished"] == 5
    assert report["ok"] is False and "--timeout 1.5 s reached" in report["problems"][0]
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("skipline: error: ")


async def test_an_unreachable_server_is_one_error_line_and_exit_1(launcher: Launcher) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = await launcher.cli("bench", "--url", url, "--orders", "10", check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"skipline: error: cannot reach {url}: Connection refused\n"


@pytest.mark.parametrize("flag", ["--orders", "--connections"])
def test_fewer_than_one_order_or_connection_is_refused(flag: str) -> None:
    result = CliRunner().invoke(cli, ["bench", flag, "0"])
    assert result.exit_code == 2
    assert f"Invalid value for '{flag}'" in result.output and "x>=1" in result.output


def test_bench_reads_its_own_environment_variable_for_connections() -> None:
    """`skipline worker --concurrency` owns SKIPLINE_CONCURRENCY; bench must not read it."""
    from skipline.cli.bench import bench

    envvars = {param.name: param.envvar for param in bench.params}
    assert envvars["concurrency"] == "SKIPLINE_CONNECTIONS"
    assert "SKIPLINE_CONCURRENCY" not in envvars.values()


async def test_progress_goes_to_stderr_bounded_when_piped(launcher: Launcher) -> None:
    """Into a pipe, a progress line at most every PIPED_EVERY seconds; stdout keeps the report
    alone. (In a terminal the line is rewritten in place: tests/unit/test_bench_progress.py.)"""
    from skipline.cli.bench_progress import PIPED_EVERY

    server = await launcher.serve("--workers", "2")
    started = time.monotonic()
    result = await launcher.cli("bench", "--url", server.url, "--orders", "12",
                                "--duration", "0.5", "--json", check=False)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)
    progress = [line for line in result.stderr.splitlines() if line.startswith("bench: ")]
    assert 1 <= len(progress) <= elapsed / PIPED_EVERY + 1, result.stderr
    assert "final" in progress[-1] and "\r" not in result.stderr
    quiet = await launcher.cli("bench", "--url", server.url, "--orders", "4",
                               "--duration", "0.8", "--no-progress", "--json")
    assert "bench: " not in quiet.stderr
