"""Admission control through the real HTTP API: a tier at its `max_queued` (or the service at its
global cap) is refused at the door with 503 + Retry-After (problem+json), before its body is
read, while the other tiers are still accepted; nothing refused is queued.

Every store kind: memory, SQLite on a temporary file, PostgreSQL (a fresh database per test).
The server is aiohttp's test server bound to 127.0.0.1; requests go over a real socket.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from skipline.api import create_app
from skipline.config import Settings, parse_tiers
from skipline.domain.models import Status
from skipline.service import QUEUED_COUNTS_TTL, OrderService
from skipline.store import open_store
from tests.store_kinds import ALL_STORE_KINDS, url_for

CONFIG = """
[tiers.vip]
priority = 0

[tiers.regular]
priority = 1
max_wait = 300
max_queued = 3

[tiers.batch]
priority = 2
max_wait = 600
"""
"""skipline.toml as a user writes it: only `regular` (the anonymous tier) is capped."""

REGULAR_CAP = 3
PROMPT = 5.0
"""Seconds within which a refusal must arrive."""


@pytest.fixture(params=ALL_STORE_KINDS)
def store_url(request: pytest.FixtureRequest) -> str:
    return url_for(request, "admission.db")


def settings_for(url: str, **overrides: Any) -> Settings:
    tiers = parse_tiers(tomllib.loads(CONFIG), "test skipline.toml")
    return Settings(db=url, tiers=tiers, **overrides)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[TestClient[Any, Any], OrderService]]:
    store = open_store(settings.db)
    await store.open()
    service = OrderService(store, settings)
    try:
        server = TestServer(create_app(service), host="127.0.0.1")
        async with TestClient(server) as client:
            yield client, service
    finally:
        await store.close()


async def submit(
    client: TestClient[Any, Any], key: str | None = None, body: Any = None,
) -> tuple[int, dict[str, str], Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with client.post("/orders", json=body or {}, headers=headers) as response:
        return response.status, dict(response.headers), json.loads(await response.read())


def assert_queue_full(status: int, headers: dict[str, str], body: Any, *words: str) -> None:
    """503, problem+json naming `words`, and a whole-seconds Retry-After of at least 1."""
    assert status == 503, body
    assert headers["Content-Type"].startswith("application/problem+json")
    assert body["status"] == 503
    for word in words:
        assert word in body["detail"], body
    assert headers["Retry-After"].isdigit() and int(headers["Retry-After"]) >= 1


async def fill_regular(client: TestClient[Any, Any]) -> list[str]:
    """Queue `REGULAR_CAP` anonymous (regular) orders; their ids."""
    ids = []
    for _ in range(REGULAR_CAP):
        status, _, body = await submit(client)
        assert status == 202, body
        ids.append(body["id"])
    return ids


async def test_a_full_tier_is_refused_while_other_tiers_are_accepted(store_url: str) -> None:
    async with serving(settings_for(store_url)) as (client, service):
        await fill_regular(client)
        assert_queue_full(*await submit(client), "regular")
        vip = await service.add_key("acme", "vip")
        batch = await service.add_key("nightly", "batch")
        for key, tier in ((vip, "vip"), (batch, "batch"), (vip, "vip")):
            status, _, body = await submit(client, key)
            assert (status, body["tier"]) == (202, tier), body
        assert_queue_full(*await submit(client, vip, {"user_type": "regular"}), "regular")
        counts = await service.store.queued_counts()
        assert {tier: n for tier, n in counts.items() if n} == {
            "regular": REGULAR_CAP, "vip": 2, "batch": 1,
        }, "a refused order was queued"


async def test_the_refusal_comes_before_the_body_is_read(store_url: str) -> None:
    async with serving(settings_for(store_url)) as (client, _):
        await fill_regular(client)
        reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
        try:
            writer.write(
                b"POST /orders HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            )  # ...and never the 1000 bytes it announces
            async with asyncio.timeout(PROMPT):
                head = await reader.readuntil(b"\r\n\r\n")
        finally:
            writer.close()
        assert head.startswith(b"HTTP/1.1 503"), head
        assert b"retry-after:" in head.lower()


async def test_retry_after_follows_the_recent_drain_rate(store_url: str) -> None:
    async with serving(settings_for(store_url)) as (client, service):
        await fill_regular(client)
        status, headers, body = await submit(client)
        assert_queue_full(status, headers, body)
        assert headers["Retry-After"] == "60", "nothing drained yet: the longest estimate"
        await drain_vip_orders(client, service, count=30)
        status, headers, body = await submit(client)
        assert_queue_full(status, headers, body, "regular")
        assert headers["Retry-After"] == "2", "30 finished in the last minute: one per 2 s"


async def drain_vip_orders(client: TestClient[Any, Any], service: OrderService, count: int) -> None:
    """Submit `count` VIP orders over HTTP and finish them as a worker would."""
    vip = await service.add_key("acme", "vip")
    for _ in range(count):
        assert (await submit(client, vip))[0] == 202
    leases = await service.store.claim("worker-1", count, 30.0)
    assert [lease.order.tier for lease in leases] == ["vip"] * count
    for lease in leases:
        assert await service.store.complete(lease.order.id, lease.token, None)


async def test_a_freed_place_is_offered_again(store_url: str) -> None:
    async with serving(settings_for(store_url)) as (client, _):
        first, *_ = await fill_regular(client)
        assert_queue_full(*await submit(client))
        async with client.delete(f"/orders/{first}") as response:
            assert response.status == 200
            assert (await response.json())["status"] == Status.CANCELLED.value
        accepted = await submit_until_accepted(client, within=10 * QUEUED_COUNTS_TTL)
        assert accepted["tier"] == "regular"
        assert_queue_full(*await submit(client))


async def submit_until_accepted(client: TestClient[Any, Any], within: float) -> Any:
    """Queued counts are a snapshot renewed every QUEUED_COUNTS_TTL: retry until accepted."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        status, headers, body = await submit(client)
        if status == 202:
            return body
        assert_queue_full(status, headers, body)
        assert asyncio.get_running_loop().time() < deadline, "the freed place was not offered"
        await asyncio.sleep(QUEUED_COUNTS_TTL / 2)


async def test_the_global_cap_refuses_every_tier(store_url: str) -> None:
    async with serving(settings_for(store_url, max_queued=4)) as (client, service):
        vip = await service.add_key("acme", "vip")
        for key in (None, vip, None, vip):
            assert (await submit(client, key))[0] == 202
        assert_queue_full(*await submit(client, vip), "4 orders")
        assert_queue_full(*await submit(client), "4 orders")


async def test_concurrent_submissions_cannot_overshoot_the_cap(store_url: str) -> None:
    """Forty anonymous POSTs at once against a cap of 3: the ones admitted before any has
    committed count against the cap too, so exactly 3 are accepted in this process."""
    async with serving(settings_for(store_url)) as (client, service):
        answers = await asyncio.gather(*(submit(client) for _ in range(40)))
        statuses = sorted(status for status, _, _ in answers)
        assert statuses.count(202) == REGULAR_CAP, statuses
        assert set(statuses) == {202, 503}
        assert (await service.store.queued_counts()).get("regular") == REGULAR_CAP
