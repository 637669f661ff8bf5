"""Rate limits through a real server and real sockets: a caller over its tier's `rate_limit`
gets 429 problem+json with Retry-After and nothing is stored; keys and client addresses have
budgets of their own; the budget comes back at the configured rate (the service's clock is a
FakeClock, so refills are exact and no test sleeps)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from skipline.clock import FakeClock
from skipline.config import Settings
from skipline.domain.models import Tier
from skipline.domain.ratelimit import RateLimit
from skipline.service import OrderService
from skipline.store import open_store
from tests.integration.api_harness import STORE_KINDS, Api, assert_problem, serving, store_url

TIERS = {
    "vip": Tier("vip", 0, rate_limit=RateLimit(rate=10.0, burst=5)),
    "regular": Tier("regular", 1, 300.0, rate_limit=RateLimit(rate=2.0, burst=2)),
    "internal": Tier("internal", 2),
}


@dataclass
class LimitedApi:
    api: Api
    clock: FakeClock


@asynccontextmanager
async def limited_api(kind: str, folder: Path) -> AsyncIterator[LimitedApi]:
    url = store_url(kind, folder)
    store = open_store(url)
    await store.open()
    clock = FakeClock()
    try:
        service = OrderService(store, Settings(db=url, tiers=TIERS), clock)
        async with serving(service) as api:
            yield LimitedApi(api, clock)
    finally:
        await store.close()


@pytest.fixture(params=STORE_KINDS)
async def limited(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LimitedApi]:
    async with limited_api(request.param, tmp_path) as running:
        yield running


async def statuses(api: Api, count: int, key: str | None = None) -> list[int]:
    return [(await api.submit({}, key=key)).status for _ in range(count)]


async def queued(api: Api) -> int:
    return sum((await api.service.store.queued_counts()).values())


async def test_over_the_limit_is_429_with_retry_after_and_nothing_is_stored(
    limited: LimitedApi,
) -> None:
    api = limited.api
    assert await statuses(api, 2) == [202, 202]

    refused = await api.submit({"payload": {"n": 3}})

    problem = assert_problem(refused, 429, "2 orders per second")
    assert problem["type"] == "urn:skipline:problem:rate-limited"
    assert refused.headers["Retry-After"] == "1"
    assert await queued(api) == 2


async def test_the_budget_comes_back_at_the_configured_rate(limited: LimitedApi) -> None:
    api = limited.api
    assert await statuses(api, 3) == [202, 202, 429]

    limited.clock.advance(0.5)  # one token at 2 per second
    assert await statuses(api, 2) == [202, 429]
    limited.clock.advance(60)  # refilled, but only up to the burst
    assert await statuses(api, 3) == [202, 202, 429]


async def test_each_key_has_its_own_budget_and_its_tiers_limit(limited: LimitedApi) -> None:
    api = limited.api
    first = await api.service.add_key("first", "regular")
    second = await api.service.add_key("second", "regular")
    vip = await api.service.add_key("gold", "vip")
    unlimited = await api.service.add_key("batch", "internal")

    assert await statuses(api, 3, first) == [202, 202, 429]
    assert await statuses(api, 3, second) == [202, 202, 429]
    assert await statuses(api, 6, vip) == [202] * 5 + [429]
    assert await statuses(api, 50, unlimited) == [202] * 50
    # A key's limit is its own tier's, even when it asks for a worse tier.
    assert (await api.submit({"user_type": "regular"}, key=vip)).status == 429


async def test_anonymous_callers_are_limited_per_client_address(limited: LimitedApi) -> None:
    """Two loopback addresses are two clients (Linux routes all of 127.0.0.0/8 to lo)."""
    api = limited.api
    assert await statuses(api, 3) == [202, 202, 429]
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as other_session:
        other = Api(api.host, api.port, api.service, other_session)
        assert await statuses(other, 3) == [202, 202, 429]
    key = await api.service.add_key("from-the-same-address", "regular")
    assert await statuses(api, 1, key) == [202]


async def test_reads_are_not_limited(limited: LimitedApi) -> None:
    api = limited.api
    order_id = (await api.submit({})).json()["id"]
    await statuses(api, 2)

    for _ in range(20):
        assert (await api.call("GET", f"/orders/{order_id}")).status == 200
