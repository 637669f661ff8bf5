"""Bad input is a 4xx problem, never a crash (invariant 7): malformed JSON, schema violations,
media types, Idempotency-Key, unknown routes and methods, queue full, shutting down, and an
unexpected exception. Every answer is application/problem+json naming the problem."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiohttp import web

from skipline.config import Settings
from skipline.domain.models import Tier
from tests.integration.api_harness import (
    Api,
    Reply,
    assert_problem,
    raw_connection,
    read_response,
    request_head,
    running_api,
)

JSON_TYPE = {"Content-Type": "application/json"}


async def post_raw(api: Api, body: bytes) -> Reply:
    return await api.call("POST", "/orders", data=body, headers=JSON_TYPE)


# --- the body ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"{", "JSON"), (b"", "JSON"), (b'{"duration": 1,}', "JSON"), (b"nope", "JSON"),
        (b'{"payload": {"a": "\xff"}}', "JSON"), (b'{"payload": {"a": "\\ud800"}}', "JSON"),
        (b"[", "JSON"),
    ],
)
async def test_malformed_json_is_400(api: Api, body: bytes, named: str) -> None:
    reply = await api.call("POST", "/orders", data=body, headers=JSON_TYPE)
    assert_problem(reply, 400, named)
    assert await api.service.store.queued_counts() == {}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b'{"duration": "fast"}', "duration"),
        (b'{"duration": true}', "duration"),
        (b'{"duration": -0.5}', "duration"),
        (b'{"duration": 3600.001}', "duration"),
        (b'{"duration": 1e400}', "duration"),
        (b'{"duration": NaN}', "NaN"),
        (b'{"duration": Infinity}', "Infinity"),
        (b'{"payload": {"x": -Infinity}}', "Infinity"),
        (b'{"payload": {"x": 1e999}}', "payload"),
        (b'{"payload": [1, 2]}', "payload"),
        (b'{"payload": "text"}', "payload"),
        (b'{"user_type": 1}', "user_type"),
        (b'{"priority": 0}', "priority"),
        (b'{"status": "succeeded"}', "status"),
        (b'{"tier": "vip"}', "tier"),
        (b'{"id": "mine"}', "id"),
        (b'{"duration": 1, "extra": null}', "extra"),
        (b"[]", "object"),
        (b"42", "object"),
        (b'{"payload": {"a": "nul\\u0000byte"}}', "NUL"),
    ],
)
async def test_schema_violations_are_422_naming_the_field(
    api: Api, body: bytes, named: str,
) -> None:
    assert_problem(await post_raw(api, body), 422, named)
    assert await api.service.store.queued_counts() == {}


async def test_a_payload_nested_too_deep_is_422(api: Api) -> None:
    deep = b'{"payload": ' + b'{"a": ' * 100 + b"1" + b"}" * 101
    assert_problem(await post_raw(api, deep), 422, "nests")
    very_deep = b'{"payload": ' + b'{"a":' * 10000 + b"1" + b"}" * 10001
    assert_problem(await post_raw(api, very_deep), 422, "nests")


@pytest.mark.parametrize("duration", [0, 0.0, 3600, 1e-9])
async def test_durations_at_the_bounds_are_accepted(api: Api, duration: float) -> None:
    reply = await api.submit({"duration": duration})
    assert reply.status == 202


# --- the media type ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonl",
     "application/json; charset=latin-1", "multipart/form-data; boundary=x"],
)
async def test_a_body_that_is_not_json_is_415(api: Api, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    reply = await api.call("POST", "/orders", data=b"{}", headers=headers)
    assert_problem(reply, 415, "application/json")


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON; Charset=UTF-8"],
)
async def test_json_with_a_utf8_charset_is_accepted(api: Api, content_type: str) -> None:
    reply = await api.call("POST", "/orders", data=b"{}", headers={"Content-Type": content_type})
    assert reply.status == 202


# --- Idempotency-Key -----------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["", "x" * 256, "caf\u00e9", "tab\there"])
async def test_an_invalid_idempotency_key_is_422(api: Api, value: str) -> None:
    head = request_head("POST", "/orders", {
        "Content-Type": "application/json", "Content-Length": "2", "Idempotency-Key": value,
    })
    async with raw_connection(api) as (reader, writer):
        writer.write(head + b"{}")
        reply = await read_response(reader)
    assert reply.status == 422 and reply.headers["content-type"].startswith(
        "application/problem+json")
    assert "Idempotency-Key" in reply.json()["detail"]
    assert await api.service.store.queued_counts() == {}


async def test_the_longest_idempotency_key_is_accepted(api: Api) -> None:
    reply = await api.submit({}, headers={"Idempotency-Key": "k" * 255})
    assert reply.status == 202


# --- routes and methods --------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/nope", "/orders/a/b", "/dashboard/../secret", "/ORDERS"])
async def test_unknown_routes_are_404_problems(api: Api, path: str) -> None:
    assert_problem(await api.call("GET", path), 404)


@pytest.mark.parametrize(("method", "path"), [("PUT", "/orders"), ("POST", "/stats"),
                                              ("PATCH", "/orders/x"), ("DELETE", "/orders")])
async def test_wrong_methods_are_405_problems(api: Api, method: str, path: str) -> None:
    reply = await api.call(method, path)
    assert_problem(reply, 405, method)
    assert "GET" in reply.headers["Allow"]


async def test_an_unexpected_exception_is_a_generic_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    async def explode(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals at /etc/skipline")

    def add_failing_route(app: web.Application) -> None:
        app.router.add_get("/explode", explode)

    async with running_api("memory", tmp_path, customise=add_failing_route) as api:
        with caplog.at_level(logging.ERROR, logger="skipline.api"):
            reply = await api.call("GET", "/explode")
        problem = assert_problem(reply, 500)
        assert b"secret" not in reply.body and b"RuntimeError" not in reply.body
        assert "logged" in problem["detail"]
        assert (await api.call("GET", "/healthz")).status == 200
    logged = [record for record in caplog.records if record.exc_info]
    assert logged and "secret internals" in str(logged[0].exc_info[1])  # type: ignore[index]


# --- admission: 503 with Retry-After -----------------------------------------------------------
async def test_a_full_tier_is_503_with_retry_after(tmp_path: Path) -> None:
    tiers = {"vip": Tier("vip", 0), "regular": Tier("regular", 1, 300.0, max_queued=1)}
    async with running_api("memory", tmp_path, Settings(db="memory://", tiers=tiers)) as api:
        assert (await api.submit({})).status == 202
        assert_problem(await api.submit({}), 503, "regular")
        vip = await api.service.add_key("acme", "vip")
        assert (await api.submit({}, key=vip)).status == 202
        vip_asking_regular = await api.submit({"user_type": "regular"}, key=vip)
        assert_problem(vip_asking_regular, 503, "regular")


async def test_a_full_queue_is_503_with_retry_after(tmp_path: Path) -> None:
    async with running_api("memory", tmp_path, Settings(db="memory://", max_queued=2)) as api:
        assert [(await api.submit({})).status for _ in range(2)] == [202, 202]
        assert_problem(await api.submit({}), 503, "2 orders")


async def test_a_draining_service_refuses_orders_but_still_answers_reads(api: Api) -> None:
    order_id = (await api.submit({})).json()["id"]
    api.service.accepting = False
    assert_problem(await api.submit({}), 503)
    assert (await api.call("GET", f"/orders/{order_id}")).status == 200
    assert (await api.call("GET", "/stats")).status == 200


@pytest.mark.parametrize(
    ("setup", "headers", "status"),
    [
        ("draining", {"Content-Type": "application/json"}, 503),
        ("draining", {"Content-Type": "text/plain"}, 503),
        ("", {"Content-Type": "application/json", "Authorization": "Bearer sk_wrong"}, 401),
        ("draining", {"Content-Type": "application/json", "Authorization": "Basic x"}, 401),
        ("", {"Content-Type": "text/plain"}, 415),
    ],
)
async def test_refusals_come_before_the_body_is_read(
    api: Api, setup: str, headers: dict[str, str], status: int,
) -> None:
    """A huge declared body that never arrives: the answer must not wait for it."""
    api.service.accepting = setup != "draining"
    head = request_head("POST", "/orders", {**headers, "Content-Length": str(8 * 1024 * 1024)})
    async with raw_connection(api) as (reader, writer):
        writer.write(head + b'{"payload": {')
        reply = await read_response(reader)
    assert reply.status == status
    assert reply.headers["content-type"].startswith("application/problem+json")
    if status == 503:
        assert int(reply.headers["retry-after"]) >= 1
