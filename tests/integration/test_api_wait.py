"""`GET /orders/{id}?wait=S` through a real socket: answered when the order becomes final, or
after S seconds with the order as it is (200 either way); a bad S is a 422."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.integration.api_harness import Api, assert_problem


async def test_a_waiting_request_is_answered_when_the_order_finishes(api: Api) -> None:
    order = (await api.submit({})).json()
    waiting = asyncio.create_task(api.call("GET", f"/orders/{order['id']}?wait=20"))
    await asyncio.sleep(0.3)
    assert not waiting.done()

    started = time.monotonic()
    await api.call("DELETE", f"/orders/{order['id']}")
    reply = await asyncio.wait_for(waiting, 5.0)

    assert reply.status == 200
    assert reply.json()["status"] == "cancelled"
    assert time.monotonic() - started < 1.0


async def test_a_wait_that_runs_out_answers_200_with_the_current_state(api: Api) -> None:
    order = (await api.submit({})).json()
    started = time.monotonic()

    reply = await api.call("GET", f"/orders/{order['id']}?wait=0.5")

    assert reply.status == 200
    assert reply.json()["status"] == "queued"
    assert 0.45 <= time.monotonic() - started < 3.0


@pytest.mark.parametrize("wait", ["0", "-1", "60.5", "abc", "nan", "inf"])
async def test_a_wait_outside_0_to_60_seconds_is_refused(api: Api, wait: str) -> None:
    order = (await api.submit({})).json()

    reply = await api.call("GET", f"/orders/{order['id']}?wait={wait}")

    assert_problem(reply, 422, "wait")


async def test_waiting_for_someone_elses_order_is_404(api: Api) -> None:
    alice = await api.service.add_key("alice", "regular")
    bob = await api.service.add_key("bob", "regular")
    order = (await api.submit({}, key=alice)).json()

    reply = await api.call("GET", f"/orders/{order['id']}?wait=1", key=bob)

    assert_problem(reply, 404)


@pytest.mark.parametrize(("query", "word"), [
    ("wait=60&wait=0.1", "more than once"),
    ("wait=0.1&verbose=1", "verbose"),
    ("=1", "unknown query parameter"),
])
async def test_a_query_the_schema_does_not_state_is_refused_at_once(
    api: Api, query: str, word: str,
) -> None:
    order = (await api.submit({})).json()
    started = time.monotonic()

    reply = await api.call("GET", f"/orders/{order['id']}?{query}")

    assert_problem(reply, 422, word)
    assert time.monotonic() - started < 3.0
