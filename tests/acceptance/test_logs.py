"""A real `skipline serve --log-format json --access-log`: every line it writes to stderr is
one JSON object; start, order, access and stop lines carry their fields; no credential and no
query string reaches the log. And what a start finds and a stop leaves in the queue."""

from __future__ import annotations

import json
import signal
from typing import Any

import aiohttp

from tests.acceptance.processes import (
    Launcher,
    Server,
    accept,
    auth,
    wait_until_final,
)

FLAKY = '''
async def handle(order):
    if order.payload.get("fail"):
        raise RuntimeError("out of stock")
    return {"ok": True}
'''


def json_lines(server: Server) -> list[dict[str, Any]]:
    """Every line of the process's output, each parsed as JSON (a line that is not fails)."""
    text = server.log_path.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines()]
    for line in lines:
        assert {"ts", "level", "event", "logger", "message"} <= set(line), line
        assert line["ts"].endswith("Z")
    return lines


def events(lines: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == name]


async def test_json_logs_carry_the_fields_and_never_a_credential(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    (launcher.workdir / "flaky.py").write_text(FLAKY)
    key = await launcher.add_key("acme", "vip")
    server = await launcher.serve(
        "--workers", "2", "--handler", "flaky:handle", "--max-attempts", "2",
        "--log-format", "json", "--access-log",
    )
    ok_id = await accept(http, server, {"payload": {"item": "book"}, "user_type": "vip"}, key)
    async with http.post(server.url + "/orders?token=query-secret", json={"payload": {"fail": 1}},
                         headers=auth(key)) as response:
        assert response.status == 202
        bad_id = (await response.json())["id"]
    await wait_until_final(http, server, [(ok_id, key), (bad_id, key)], within=30)
    server.send(signal.SIGTERM)
    assert await server.wait_exit(within=25) == 0

    lines = json_lines(server)
    text = server.log_path.read_text(encoding="utf-8")
    assert key not in text and "query-secret" not in text and "Bearer" not in text

    started = events(lines, "skipline.started")[0]
    assert started["url"] == server.url + "/" and started["docs_url"] == server.url + "/docs"
    assert events(lines, "database.opened")[0]["db"] == str(launcher.workdir / "skipline.db")
    found = events(lines, "queue.found")[0]
    assert (found["queued"], found["running"]) == (0, 0)

    succeeded = events(lines, "order.succeeded")[0]
    assert succeeded["order_id"] == ok_id and succeeded["tier"] == "vip"
    assert succeeded["attempt"] == 1 and succeeded["run_ms"] >= 0 and succeeded["wait_ms"] >= 0
    assert "customer" not in succeeded  # not known: not invented
    assert succeeded["kind"] == "default"  # every order has a kind
    retry = events(lines, "order.retry")[0]
    assert (retry["order_id"], retry["attempt"]) == (bad_id, 1)
    assert "out of stock" in retry["error"]
    failed = events(lines, "order.failed")[0]
    assert (failed["order_id"], failed["attempt"], failed["level"]) == (bad_id, 2, "warning")
    assert "out of stock" in failed["error"]

    posts = [line for line in events(lines, "http.request") if line["method"] == "POST"]
    assert [post["path"] for post in posts] == ["/orders", "/orders"]
    assert {post["status"] for post in posts} == {202}
    assert {post["order_id"] for post in posts} == {ok_id, bad_id}
    assert all(post["duration_ms"] >= 0 and post["remote"] for post in posts)

    stopped = events(lines, "skipline.stopped")[0]
    assert (stopped["queued"], stopped["running"]) == (0, 0)
    assert lines[-1]["event"] == "skipline.stopped"


async def test_text_logs_without_access_log_by_default(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    server = await launcher.serve("--workers", "1", "--log-level", "debug")
    await accept(http, server, {"duration": 0})
    server.send(signal.SIGTERM)
    assert await server.wait_exit(within=25) == 0
    text = server.log_path.read_text(encoding="utf-8")
    assert "POST /orders" not in text, "the access log is off unless --access-log"
    assert f"dashboard at {server.url}/ and API docs at {server.url}/docs" in text
    assert f"database: {launcher.workdir / 'skipline.db'}" in text


async def test_a_start_names_what_it_resumes_and_a_stop_what_remains(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    api_only = await launcher.serve("--no-workers", "--log-format", "json")
    for _ in range(3):
        await accept(http, api_only, {"duration": 0})
    api_only.send(signal.SIGTERM)
    assert await api_only.wait_exit(within=25) == 0
    stopped = events(json_lines(api_only), "skipline.stopped")[0]
    assert (stopped["queued"], stopped["running"]) == (3, 0)
    assert "3 order(s) remain queued" in stopped["message"]

    again = await launcher.serve("--no-workers", "--log-format", "json")
    again.send(signal.SIGTERM)
    assert await again.wait_exit(within=25) == 0
    found = events(json_lines(again), "queue.found")[0]
    assert (found["queued"], found["running"]) == (3, 0)


async def test_the_access_log_is_independent_of_the_log_level(
    launcher: Launcher, http: aiohttp.ClientSession
) -> None:
    server = await launcher.serve("--workers", "1", "--log-level", "error", "--access-log",
                                  "--log-format", "json")
    await accept(http, server, {"duration": 0})
    server.send(signal.SIGTERM)
    assert await server.wait_exit(within=25) == 0
    lines = json_lines(server)
    assert {line["event"] for line in lines} == {"http.request"}, "only access lines at error"
    assert [line["path"] for line in lines if line["method"] == "POST"] == ["/orders"]
