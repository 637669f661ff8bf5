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
        "--idempotency-key", "cli-1",
    )
    order = json.loads(submitted.stdout)
    assert order["payload"] == {"sku": 42} and order["tier"] == "regular"
    again = await launcher.cli("submit", *url, "--payload", '{"sku": 42}',
                               "--idempotency-key", "cli-1")
    assert json.loads(again.stdout)["id"] == order["id"]
    assert "already existed" in again.stderr

    shown = json.loads((await launcher.cli("status", order["id"], *url)).stdout)
    assert shown["id"] == order["id"]
    stats = json.loads((await launcher.cli("stats", *url)).stdout)
    assert "regular" in stats["tiers"]


async def test_client_commands_print_the_problem_detail(launcher: Launcher) -> None:
    server = await launcher.serve("--workers", "1")
    missing = await launcher.cli("status", "no-such-order", "--url", server.url, check=False)
    assert missing.returncode == 1
    assert missing.stderr.startswith("skipline: error: 404") and "Traceback" not in missing.stderr
    refused = await launcher.cli("submit", "--user-type", "vip", "--url", server.url,
                                 check=False)
    assert refused.returncode == 1 and "403" in refused.stderr and "vip" in refused.stderr
