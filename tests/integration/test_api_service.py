"""The service endpoints: health and readiness, /stats, Prometheus /metrics, the OpenAPI
document and its HTML rendering, the dashboard, and mounting the API into another app."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from skipline.api import METRICS, create_app
from skipline.config import Settings
from skipline.service import OrderService
from skipline.store import open_store
from tests.integration.api_harness import (
    SQLITE_READY,
    Api,
    assert_problem,
    running_api,
)

STATUS_COUNTS = ("queued", "running", "succeeded", "failed", "cancelled")


# --- health ------------------------------------------------------------------------------------
async def test_health_and_readiness(api: Api) -> None:
    assert (await api.call("GET", "/healthz")).json() == {"status": "ok"}
    assert (await api.call("GET", "/readyz")).json() == {"status": "ready"}


async def test_a_draining_service_is_not_ready_but_alive(api: Api) -> None:
    api.service.accepting = False
    assert_problem(await api.call("GET", "/readyz"), 503)
    assert (await api.call("GET", "/healthz")).status == 200


@pytest.mark.skipif(not SQLITE_READY, reason="no SQLite store")
async def test_a_store_that_is_down_is_503_with_retry_after(tmp_path: Path) -> None:
    async with running_api("sqlite", tmp_path) as api:
        order_id = (await api.submit({})).json()["id"]
        await api.service.store.close()
        assert_problem(await api.call("GET", "/readyz"), 503)
        assert_problem(await api.call("GET", f"/orders/{order_id}"), 503)
        assert_problem(await api.submit({}), 503)
        assert (await api.call("GET", "/healthz")).status == 200


# --- stats ---------------------------------------------------------------------------------------
async def test_stats_per_tier_with_waits_and_throughput(api: Api) -> None:
    empty = (await api.call("GET", "/stats")).json()
    assert list(empty["tiers"]) == ["vip", "regular"]
    assert empty["tiers"]["vip"]["wait_p50"] is None and empty["throughput_per_second"] == 0
    vip = await api.service.add_key("acme", "vip")
    await api.submit({}, key=vip)
    await api.submit({})
    cancelled = (await api.submit({})).json()["id"]
    await api.call("DELETE", f"/orders/{cancelled}")
    [lease] = await api.service.store.claim("worker-1", 1, 30.0)
    assert await api.service.store.complete(lease.order.id, lease.token, {"ok": True})
    stats = (await api.call("GET", "/stats")).json()
    assert set(stats) == {"tiers", "throughput_per_second", "accepting", "kinds"}
    assert list(stats["kinds"]) == ["default"]
    default = stats["kinds"]["default"]
    assert [default[name] for name in STATUS_COUNTS] == [1, 0, 1, 0, 1]
    assert default["wait_p50"] >= 0 and "priority" not in default
    vip_stats, regular_stats = stats["tiers"]["vip"], stats["tiers"]["regular"]
    assert [vip_stats[name] for name in STATUS_COUNTS] == [0, 0, 1, 0, 0]
    assert [regular_stats[name] for name in STATUS_COUNTS] == [1, 0, 0, 0, 1]
    assert vip_stats["wait_p50"] >= 0 and vip_stats["wait_p99"] >= vip_stats["wait_p50"]
    assert regular_stats["wait_p50"] is None
    finished = 2  # the stores count every order that reached a final status: one succeeded,
    assert stats["throughput_per_second"] == pytest.approx(finished / 60, abs=1e-3)  # 1 cancelled
    assert stats["accepting"] is True


# --- metrics -------------------------------------------------------------------------------------
async def test_metrics_are_prometheus_text(api: Api) -> None:
    await api.submit({})
    await api.call("GET", "/nope")
    reply = await api.call("GET", "/metrics")
    assert reply.status == 200 and reply.content_type.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(reply.body.decode())}
    accepted = {s.labels["tier"]: s.value for s in families["skipline_orders_accepted"].samples
                if s.name.endswith("_total")}
    assert accepted == {"regular": 1.0}
    requests = {(s.labels["route"], s.labels["method"], s.labels["status"]): s.value
                for s in families["skipline_http_requests"].samples if s.name.endswith("_total")}
    assert requests[("/orders", "POST", "202")] == 1.0
    assert requests[("unmatched", "GET", "404")] == 1.0
    latency = families["skipline_http_request_duration_seconds"]
    assert any(s.name.endswith("_bucket") and s.labels["route"] == "/orders"
               for s in latency.samples)
    queued = {(s.labels["tier"], s.labels["status"]): s.value
              for s in families["skipline_orders"].samples}
    assert queued[("regular", "queued")] == 1.0
    assert families["skipline_accepting"].samples[0].value == 1.0


async def test_every_app_has_its_own_registry(tmp_path: Path) -> None:
    store = open_store("memory://")
    await store.open()
    service = OrderService(store, Settings(db="memory://"))
    first, second = create_app(service), create_app(service)
    assert first[METRICS].registry is not second[METRICS].registry
    first[METRICS].order_accepted("vip")
    assert b'tier="vip"' in first[METRICS].render()
    assert b'tier="vip"' not in second[METRICS].render()
    await store.close()


# --- OpenAPI and docs -------------------------------------------------------------------------
async def test_the_openapi_document_lists_every_route(api: Api) -> None:
    reply = await api.call("GET", "/openapi.json")
    assert reply.status == 200 and reply.content_type.startswith("application/json")
    document = json.loads(reply.body)
    assert document["openapi"].startswith("3.1")
    assert {"/orders", "/orders/{id}", "/stats", "/healthz", "/readyz", "/metrics"} <= set(
        document["paths"])
    assert set(document["paths"]["/orders"]) == {"get", "post"}
    assert set(document["paths"]["/orders/{id}"]) >= {"get", "delete"}
    schemas = document["components"]["schemas"]
    request_schema = schemas["OrderRequest"]
    assert request_schema["additionalProperties"] is False
    assert set(request_schema["properties"]) == {
        "payload", "duration", "user_type", "customer", "callback_url", "kind", "delay",
        "not_before"}
    assert set(schemas["OrderOut"]["properties"]) == {
        "id", "tier", "priority", "status", "attempts", "created_at", "started_at",
        "finished_at", "payload", "result", "error", "customer", "callback", "history", "kind",
        "not_before", "next_attempt_at"}
    assert set(schemas["StatsOut"]["properties"]) >= {"kinds"}
    listing = {p["name"] for p in document["paths"]["/orders"]["get"]["parameters"]}
    assert {"customer", "kind"} <= listing
    assert set(document["paths"]["/orders/{id}/retry"]) >= {"post"}
    for ref in re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', reply.body.decode()):
        assert ref in schemas


async def test_the_docs_page_is_self_contained_html(api: Api) -> None:
    reply = await api.call("GET", "/docs")
    assert reply.status == 200 and reply.content_type.startswith("text/html")
    page = reply.body.decode()
    assert "/orders/{id}" in page and "urn:skipline:problem:queue-full" in page
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", page), "nothing external"
    assert "<script" not in page
    assert "default-src 'none'" in reply.headers["Content-Security-Policy"]


# --- dashboard --------------------------------------------------------------------------------
async def test_the_dashboard_and_its_own_assets_are_served(api: Api) -> None:
    page = await api.call("GET", "/")
    assert page.status == 200 and page.content_type.startswith("text/html")
    html = page.body.decode()
    assets = re.findall(r'(?:src|href)="(dashboard/[^"]+)"', html)
    assert sorted(assets) == ["dashboard/app.js", "dashboard/icon.png", "dashboard/style.css"]
    kinds = ("text/javascript", "image/png", "text/css")
    for asset, kind in zip(sorted(assets), kinds, strict=True):
        reply = await api.call("GET", "/" + asset)
        assert reply.status == 200 and reply.content_type.startswith(kind)
        assert b"http://" not in reply.body and b"https://" not in reply.body
    script = (await api.call("GET", "/dashboard/app.js")).body.decode()
    assert 'fetch("stats"' in script
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert_problem(await api.call("GET", "/dashboard/other.js"), 404)


# --- library use ------------------------------------------------------------------------------
async def test_the_api_mounts_under_a_prefix_in_another_app(tmp_path: Path) -> None:
    store = open_store("memory://")
    await store.open()
    service = OrderService(store, Settings(db="memory://"))

    async def home(request: web.Request) -> web.Response:
        return web.Response(text="the host application")

    host = web.Application()
    host.router.add_get("/", home)
    host.add_subapp("/queue/", create_app(service))
    runner = web.AppRunner(host, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with aiohttp.ClientSession() as session:
            async with session.post(base + "/queue/orders", json={}) as reply:
                assert reply.status == 202
                order_id = (await reply.json())["id"]
                assert reply.headers["Location"] == f"/queue/orders/{order_id}"
            async with session.get(base + reply.headers["Location"]) as fetched:
                assert fetched.status == 200
            async with session.get(base + "/") as home_reply:
                assert await home_reply.text() == "the host application"
    finally:
        await runner.cleanup()
        await store.close()
