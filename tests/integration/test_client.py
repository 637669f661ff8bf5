"""`skipline.client.Client` against a real server on a real socket: typed orders, typed
problems, retries that honour Retry-After, and a submission whose answer was lost (the
connection dropped after the commit) resent with the same Idempotency-Key: one order."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from skipline.client import Client, Forbidden, NotFound, RateLimited, Unprocessable, Unreachable
from skipline.config import Settings
from skipline.domain.models import OrderQuery, Tier
from skipline.domain.ratelimit import RateLimit
from skipline.testing import free_port
from tests.integration.api_harness import STORE_KINDS, Api, running_api


def client_of(api: Api, key: str | None = None, deadline: float = 10.0) -> Client:
    return Client(api.url(""), key, deadline=deadline)


async def test_submit_get_wait_cancel_retry_list_and_stats(api: Api) -> None:
    key = await api.service.add_key("alice", "vip")
    async with client_of(api, key) as client:
        order = await client.submit({"sku": 1}, user_type="vip", duration=0.1)
        assert (order.tier, order.status, order.payload) == ("vip", "queued", {"sku": 1})
        assert (await client.get(order.id)).id == order.id

        started = time.monotonic()
        waited = await client.wait(order.id, 0.3)
        assert waited.status == "queued" and time.monotonic() - started >= 0.25

        cancelled = await client.cancel(order.id)
        assert cancelled.status == "cancelled"
        requeued = await client.retry(order.id)
        assert requeued.status == "queued" and requeued.history[0].status == "cancelled"

        others = [await client.submit({"n": n}) for n in range(5)]
        listed = [found.id async for found in client.list(page_size=2)]
        assert listed == [o.id for o in reversed(others)] + [order.id]
        stats = await client.stats()
        assert stats.tiers["vip"].queued == 6 and stats.tiers["regular"].queued == 0


async def test_problems_raise_typed_errors_carrying_the_problem(api: Api) -> None:
    async with client_of(api) as client:
        with pytest.raises(NotFound) as missing:
            await client.get("no-such-order")
        assert missing.value.problem.status == 404 and missing.value.problem.detail
        with pytest.raises(Forbidden):
            await client.submit(user_type="vip")
        with pytest.raises(Unprocessable) as invalid:
            await client.submit(duration=-1)
        assert "duration" in invalid.value.problem.detail


@pytest.mark.parametrize("kind", STORE_KINDS)
async def test_a_429_is_retried_after_its_retry_after(kind: str, tmp_path: Path) -> None:
    limited = Tier("regular", 1, rate_limit=RateLimit(1.0, 1))
    settings = Settings(db="memory://", tiers={"regular": limited})
    async with running_api(kind, tmp_path, settings) as api, client_of(api) as client:
        await client.submit()
        started = time.monotonic()

        second = await client.submit()

        assert time.monotonic() - started >= 0.9, "Retry-After: 1 was not honoured"
        assert second.status == "queued"
        patient = Client(api.url(""), deadline=0.5)
        try:
            with pytest.raises(RateLimited) as refused:
                await patient.submit()
            assert refused.value.retry_after == 1.0
        finally:
            await patient.close()


def drop_first_answer(posts: list[int]) -> Callable[[web.Application], None]:
    """The first POST /orders is stored, then its connection dropped before the answer; the
    status of every POST the handler answered is appended to `posts`."""

    @web.middleware
    async def drop(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        response = await handler(request)
        if request.method == "POST":
            posts.append(response.status)
            if len(posts) == 1:
                assert request.transport is not None
                request.transport.abort()
        return response

    return lambda app: app.middlewares.append(drop)


@pytest.mark.parametrize("kind", STORE_KINDS)
async def test_a_submission_whose_answer_was_lost_is_resent_and_stored_once(
    kind: str, tmp_path: Path,
) -> None:
    posts: list[int] = []
    async with (
        running_api(kind, tmp_path, customise=drop_first_answer(posts)) as api,
        client_of(api) as client,
    ):
        order = await client.submit({"once": True})
        stored = await api.service.store.list_orders(OrderQuery(limit=10))

    assert posts == [202, 200], "stored, answer lost; resent, the first order returned"
    assert [o.id for o in stored] == [order.id]
    assert order.payload == {"once": True}


async def test_an_unreachable_server_fails_by_the_deadline() -> None:
    client = Client(f"http://127.0.0.1:{free_port()}", deadline=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(Unreachable):
            await client.get("x")
    finally:
        await client.close()
    assert time.monotonic() - started < 2.0
