"""The CLI against a running server on the same database: keys take effect at once, and the
HTTP client commands print JSON or one clear error line."""

from __future__ import annotations

import json

import aiohttp

from tests.acceptance.processes import Launcher, post_order


async def test_keys_add_list_revoke_while_the_server_runs(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    server = await launcher.serve("--workers", "1")
    key = await launcher.add_key("alice", "vip")
    reply = await post_order(http, server, {"user_type": "vip"}, key)
    assert reply.status == 202 and reply.body["tier"] == "vip"

    listed = await launcher.cli("keys", "list", "--db", launcher.db)
    row = next(line for line in listed.stdout.splitlines() if "alice" in line)
    assert "vip" in row and key not in listed.stdout

    await launcher.cli("keys", "revoke", "alice", "--db", launcher.db)
    assert (await post_order(http, server, {}, key)).status == 401
    missing = await launcher.cli("keys", "revoke", "nobody", "--db", launcher.db, check=False)
    assert missing.returncode == 1 and "nobody" in missing.stderr


async def test_submit_status_and_stats_commands(launcher: Launcher) -> None:
    server = await launcher.serve("--workers", "1")
    url = ("--url", server.url)
    submitted = await launcher.cli(
        "submit", *url, "--duration", "0", "--payload", '{"sku": 42}',
        "--idempotency-key", "cli-1", "--json",
    )
    order = json.loads(submitted.stdout)
    assert order["payload"] == {"sku": 42} and order["tier"] == "regular"
    again = await launcher.cli("submit", *url, "--payload", '{"sku": 42}',
                               "--idempotency-key", "cli-1", "--json")
    assert json.loads(again.stdout)["id"] == order["id"]
    assert "already existed" in again.stderr

    shown = json.loads((await launcher.cli("status", order["id"], *url, "--json")).stdout)
    assert shown["id"] == order["id"]
    stats = json.loads((await launcher.cli("stats", *url, "--json")).stdout)
    assert "regular" in stats["tiers"]


async def test_client_commands_print_the_problem_detail(launcher: Launcher) -> None:
    server = await launcher.serve("--workers", "1")
    missing = await launcher.cli("status", "no-such-order", "--url", server.url, check=False)
    assert missing.returncode == 1
    assert missing.stderr.startswith("skipline: error: 404") and "Traceback" not in missing.stderr
    refused = await launcher.cli("submit", "--user-type", "vip", "--url", server.url,
                                 check=False)
    assert refused.returncode == 1 and "403" in refused.stderr and "vip" in refused.stderr


async def test_tables_are_the_default_output(launcher: Launcher) -> None:
    server = await launcher.serve("--workers", "1")
    url = ("--url", server.url)
    submitted = await launcher.cli("submit", *url, "--payload", '{"sku": 7}')
    lines = dict(line.split(None, 1) for line in submitted.stdout.splitlines() if line.strip())
    assert lines["status"].strip() in ("queued", "running", "succeeded")
    assert lines["payload"].strip() == '{"sku": 7}'
    shown = await launcher.cli("status", lines["order"].strip(), *url)
    assert shown.stdout.split()[:2] == ["order", lines["order"].strip()]

    table = (await launcher.cli("stats", *url)).stdout.splitlines()
    assert table[0].split()[:3] == ["tier", "(prio)", "queued"]
    assert any(line.startswith("regular (1)") for line in table)
    assert any(line.startswith("kind default") for line in table)
    assert table[-1].startswith("throughput ")
    assert all(len(line) <= 80 for line in table), "the table must fit 80 columns in a pipe"


async def test_submit_wait_follows_the_order_until_it_is_final(launcher: Launcher) -> None:
    server = await launcher.serve("--workers", "1")
    done = await launcher.cli("submit", "--url", server.url, "--duration", "0.3", "--wait",
                              "--interval", "0.05", "--json")
    order = json.loads(done.stdout)
    assert order["status"] == "succeeded" and order["result"] == {"slept": 0.3}
    changes = [line.split()[1] for line in done.stderr.splitlines()]
    assert changes[-1] == "succeeded" and changes[0] in ("queued", "running")

    slow = await launcher.cli("submit", "--url", server.url, "--duration", "30", "--wait",
                              "--timeout", "0.5", check=False)
    assert slow.returncode == 1
    assert "not final after --timeout 0.5 s" in slow.stderr
    assert "skipline status --watch" in slow.stderr


async def test_status_watch_exits_1_when_the_order_failed(launcher: Launcher) -> None:
    (launcher.workdir / "flaky.py").write_text(
        "async def fail(order):\n    raise RuntimeError('out of stock')\n")
    server = await launcher.serve("--workers", "1", "--handler", "flaky:fail",
                                  "--max-attempts", "1")
    order = json.loads((await launcher.cli("submit", "--url", server.url, "--json")).stdout)
    watched = await launcher.cli("status", order["id"], "--url", server.url, "--watch",
                                 "--interval", "0.05", check=False)
    assert watched.returncode == 1
    assert "failed after 1 attempt(s)" in watched.stderr and "out of stock" in watched.stderr
    assert "error" in watched.stdout and "out of stock" in watched.stdout


async def test_problems_are_one_clean_line_with_a_hint(launcher: Launcher) -> None:
    server = await launcher.serve("--workers", "1")
    refused = await launcher.cli("submit", "--user-type", "vip", "--url", server.url,
                                 check=False)
    first, hint = refused.stderr.strip().splitlines()
    assert first == ("skipline: error: 403 Forbidden: Your API key does not grant that tier"
                     " — anonymous callers are not allowed tier 'vip'")
    assert hint.startswith("skipline: hint: ") and "keys add" in hint
    unknown = await launcher.cli("submit", "--key", "sk_wrong", "--url", server.url,
                                 check=False)
    first, hint = unknown.stderr.strip().splitlines()
    assert first == "skipline: error: 401 Unauthorized: The API key is unknown or revoked."
    assert "--key" in hint and "keys add" in hint


async def test_keys_revoke_twice_says_it_is_already_revoked(launcher: Launcher) -> None:
    await launcher.add_key("acme", "vip")
    first = await launcher.cli("keys", "revoke", "acme", "--db", launcher.db)
    again = await launcher.cli("keys", "revoke", "acme", "--db", launcher.db)
    assert "Revoked API key 'acme'" in first.stderr
    assert "'acme' is already revoked" in again.stderr and again.returncode == 0
    assert f"database: {launcher.workdir / 'skipline.db'}" in again.stderr
    listed = json.loads((await launcher.cli("keys", "list", "--json", "--db", launcher.db)).stdout)
    assert [(key["name"], key["revoked"]) for key in listed] == [("acme", True)]
