"""`skipline failed` and `skipline retry` against a running server whose handler fails: the
failed orders are listed newest first with their errors, and a retry queues one again."""

from __future__ import annotations

import json

import aiohttp

from tests.acceptance.processes import Launcher, accept, wait_for_status

FAILING_HANDLER = '''
async def fail(order):
    raise RuntimeError(f"bad sku {order.payload['sku']}")
'''


async def test_failed_lists_dead_letters_and_retry_queues_one_again(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    (launcher.workdir / "flaky.py").write_text(FAILING_HANDLER, encoding="utf-8")
    server = await launcher.serve("--workers", "1", "--handler", "flaky:fail",
                                  "--max-attempts", "1")
    key = await launcher.add_key("alice", "regular")
    ids = [await accept(http, server, {"payload": {"sku": n}}, key) for n in range(3)]
    for order_id in ids:
        await wait_for_status(http, server, order_id, "failed", key)
    url = ("--url", server.url, "--key", key)

    listed = json.loads((await launcher.cli("failed", *url, "--json")).stdout)
    assert [order["id"] for order in listed] == ids[::-1]
    assert [order["error"].splitlines()[-1] for order in listed] == [
        f"RuntimeError: bad sku {n}" for n in (2, 1, 0)]
    table = (await launcher.cli("failed", *url)).stdout
    assert ids[0] in table and "bad sku 0" in table

    retried = json.loads((await launcher.cli("retry", ids[0], *url, "--json")).stdout)
    assert retried["status"] == "queued" and retried["attempts"] == 0
    assert retried["history"][0]["status"] == "failed"
    again = await wait_for_status(http, server, ids[0], "failed", key)
    assert len(again["history"]) == 1
    shown = (await launcher.cli("status", ids[0], *url)).stdout
    assert "earlier run" in shown and "failed after 1 attempt(s)" in shown

    running = await accept(http, server, {"payload": {"sku": 9}}, key)
    await wait_for_status(http, server, running, "failed", key)
    refused = await launcher.cli("retry", "no-such-order", *url, check=False)
    assert refused.returncode == 1 and "404" in refused.stderr
