"""Kinds and scheduled orders over HTTP: a server with a handler registry refuses a kind it
does not know (422 naming the known ones), an API-only server takes any valid kind; `delay`
and `not_before` schedule an order (both, too far ahead or malformed: 422); a scheduled order
can be cancelled; the listing filters by kind; a retry in backoff shows `next_attempt_at`;
`/stats` and `/metrics` break counts down by kind."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest

from skipline.config import Settings
from skipline.service import OrderService
from skipline.store.memory import MemoryStore
from tests.integration.api_harness import Api, assert_problem, serving

DAY = 86400.0


@asynccontextmanager
async def kinds_api(kinds: Sequence[str] | None) -> AsyncIterator[Api]:
    """A server whose process serves `kinds` (None: an API-only process)."""
    store = MemoryStore()
    await store.open()
    try:
        service = OrderService(store, Settings(db="memory://"), kinds=kinds)
        async with serving(service) as api:
            yield api
    finally:
        await store.close()


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_known_kind_is_accepted_and_shown() -> None:
    async with kinds_api(["receipt", "ship"]) as api:
        reply = await api.submit({"kind": "ship"})
        assert reply.status == 202, reply.body
        order = reply.json()
        assert order["kind"] == "ship" and order["not_before"] is None
        fetched = (await api.call("GET", f"/orders/{order['id']}")).json()
        assert fetched["kind"] == "ship"


async def test_an_unknown_kind_is_422_naming_the_known_ones() -> None:
    async with kinds_api(["receipt", "ship"]) as api:
        assert_problem(await api.submit({"kind": "refund"}), 422, "refund", "receipt, ship")
        assert_problem(await api.submit({}), 422, "'default'", "receipt, ship")


async def test_an_api_only_server_accepts_any_valid_kind() -> None:
    async with kinds_api(None) as api:
        reply = await api.submit({"kind": "anything.v2_x-1"})
        assert reply.status == 202 and reply.json()["kind"] == "anything.v2_x-1"


@pytest.mark.parametrize("kind", ["", "Ship", "-ship", "ship now", "é", "x" * 65, 7, None])
async def test_a_malformed_kind_is_422(kind: object) -> None:
    async with kinds_api(None) as api:
        assert_problem(await api.submit({"kind": kind}), 422, "kind")


async def test_a_delay_schedules_the_order() -> None:
    async with kinds_api(None) as api:
        before = time.time()
        order = (await api.submit({"delay": 3600})).json()
        not_before = parse_time(order["not_before"]).timestamp()
        assert before + 3600 - 1 <= not_before <= time.time() + 3600
        assert order["status"] == "queued" and order["next_attempt_at"] is None


async def test_not_before_keeps_the_time_given() -> None:
    async with kinds_api(None) as api:
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=5)
        text = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        order = (await api.submit({"not_before": text})).json()
        assert parse_time(order["not_before"]) == at
        in_paris = (at + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+01:00")
        other = (await api.submit({"not_before": in_paris})).json()
        assert parse_time(other["not_before"]) == at


@pytest.mark.parametrize(("body", "words"), [
    ({"delay": 10, "not_before": "2030-01-01T00:00:00Z"}, ("delay", "not_before", "not both")),
    ({"delay": 30 * DAY + 1}, ("delay",)),
    ({"delay": -1}, ("delay",)),
    ({"delay": "soon"}, ("delay",)),
    ({"not_before": "tomorrow"}, ("not_before",)),
    ({"not_before": "2030-01-01T00:00:00"}, ("not_before", "offset")),
    ({"not_before": "2030-13-01T00:00:00Z"}, ("not_before",)),
    ({"not_before": 1700000000}, ("not_before",)),
])
async def test_bad_schedules_are_422(body: dict[str, object], words: tuple[str, ...]) -> None:
    async with kinds_api(None) as api:
        assert_problem(await api.submit(body), 422, *words)


async def test_not_before_past_30_days_is_422_and_a_past_one_runs_at_once() -> None:
    async with kinds_api(None) as api:
        far = (datetime.now(UTC) + timedelta(days=31)).isoformat()
        assert_problem(await api.submit({"not_before": far}), 422, "30 days")
        past = (datetime.now(UTC) - timedelta(days=400)).isoformat()
        reply = await api.submit({"not_before": past})
        assert reply.status == 202
        [lease] = await api.service.store.claim("w", 5, 30.0)
        assert lease.order.id == reply.json()["id"]


async def test_a_scheduled_order_can_be_cancelled() -> None:
    async with kinds_api(None) as api:
        order = (await api.submit({"delay": 600})).json()
        reply = await api.call("DELETE", f"/orders/{order['id']}")
        assert reply.status == 200 and reply.json()["status"] == "cancelled"
        assert await api.service.store.claim("w", 5, 30.0) == []


async def test_the_listing_filters_by_kind() -> None:
    async with kinds_api(None) as api:
        admin = await api.service.add_key("ops", "regular", admin=True)
        ship = (await api.submit({"kind": "ship"})).json()
        await api.submit({"kind": "receipt"})
        listed = (await api.call("GET", "/orders?kind=ship", key=admin)).json()["orders"]
        assert [order["id"] for order in listed] == [ship["id"]]
        assert_problem(await api.call("GET", "/orders?kind=Bad!", key=admin), 422, "kind")


async def test_a_retry_in_backoff_shows_next_attempt_at() -> None:
    async with kinds_api(None) as api:
        order = (await api.submit({})).json()
        [lease] = await api.service.store.claim("w", 1, 30.0)
        await api.service.store.fail(lease.order.id, lease.token, "boom", retry_delay=600.0)
        shown = (await api.call("GET", f"/orders/{order['id']}")).json()
        assert shown["status"] == "queued" and shown["attempts"] == 1
        next_at = parse_time(shown["next_attempt_at"]).timestamp()
        assert time.time() + 590 < next_at < time.time() + 601
        assert shown["not_before"] is None


async def test_stats_and_metrics_break_down_by_kind() -> None:
    async with kinds_api(None) as api:
        await api.submit({"kind": "ship"})
        await api.submit({"kind": "ship", "delay": 600})
        await api.submit({"kind": "receipt"})
        await api.service.store.claim("w", 1, 30.0, ["receipt"])
        stats = (await api.call("GET", "/stats")).json()
        assert stats["kinds"]["ship"]["queued"] == 2
        assert stats["kinds"]["receipt"]["running"] == 1
        assert stats["kinds"]["receipt"]["wait_p50"] is not None
        text = (await api.call("GET", "/metrics")).body.decode()
        assert 'skipline_kind_orders{kind="ship",status="queued"} 2.0' in text
        assert 'skipline_kind_orders_accepted_total{kind="ship"} 2.0' in text
        assert 'skipline_kind_wait_seconds{kind="receipt",quantile="0.5"}' in text


async def test_the_openapi_document_names_the_kinds_served() -> None:
    async with kinds_api(["receipt", "ship"]) as api:
        document = (await api.call("GET", "/openapi.json")).json()
        kind = document["components"]["schemas"]["OrderRequest"]["properties"]["kind"]
        assert kind["enum"] == ["receipt", "ship"]
    async with kinds_api(None) as api:
        document = (await api.call("GET", "/openapi.json")).json()
        kind = document["components"]["schemas"]["OrderRequest"]["properties"]["kind"]
        assert "enum" not in kind and kind["pattern"]


async def test_a_replayed_key_with_another_kind_or_schedule_is_another_request() -> None:
    async with kinds_api(None) as api:
        first = await api.submit({"kind": "ship", "delay": 60},
                                 headers={"Idempotency-Key": "k-1"})
        assert first.status == 202
        again = await api.submit({"kind": "ship", "delay": 60},
                                 headers={"Idempotency-Key": "k-1"})
        assert again.status == 200 and again.json()["id"] == first.json()["id"]
        for other in ({"kind": "mail", "delay": 60}, {"kind": "ship"}, {"kind": "ship",
                                                                        "delay": 61}):
            reply = await api.submit(other, headers={"Idempotency-Key": "k-1"})
            assert_problem(reply, 422, "Idempotency-Key")
