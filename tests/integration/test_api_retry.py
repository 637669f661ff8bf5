"""`POST /orders/{id}/retry` through a real socket and a real store: who may requeue (the
owner or an admin; others 404), which statuses (failed or cancelled; queued or running 409),
and a fresh attempts budget with real workers, the previous error kept in the history."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from skipline.config import Settings
from skipline.domain.models import Order
from skipline.runtime import Workers
from tests.integration.api_harness import STORE_KINDS, Api, assert_problem, running_api


async def _cancelled(api: Api, key: str | None) -> str:
    order = (await api.submit({}, key=key)).json()
    assert (await api.call("DELETE", f"/orders/{order['id']}", key=key)).status == 200
    return str(order["id"])


async def test_the_owner_and_an_admin_may_retry_others_get_404(api: Api) -> None:
    alice = await api.service.add_key("alice", "regular")
    bob = await api.service.add_key("bob", "regular")
    admin = await api.service.add_key("root", "regular", admin=True)
    order_id = await _cancelled(api, alice)

    for stranger in (bob, None):
        assert_problem(await api.call("POST", f"/orders/{order_id}/retry", key=stranger), 404)
    by_owner = await api.call("POST", f"/orders/{order_id}/retry", key=alice)
    assert by_owner.status == 202, by_owner.body
    assert by_owner.json()["status"] == "queued"
    assert by_owner.headers["Location"] == f"/orders/{order_id}"

    await api.call("DELETE", f"/orders/{order_id}", key=alice)
    by_admin = await api.call("POST", f"/orders/{order_id}/retry", key=admin)
    assert by_admin.status == 202
    assert [run["status"] for run in by_admin.json()["history"]] == ["cancelled", "cancelled"]


async def test_an_anonymous_order_is_retried_by_whoever_holds_its_id(api: Api) -> None:
    order_id = await _cancelled(api, None)

    reply = await api.call("POST", f"/orders/{order_id}/retry")

    assert reply.status == 202


async def test_queued_and_running_orders_are_409_and_unknown_ones_404(api: Api) -> None:
    queued = (await api.submit({})).json()["id"]
    running = (await api.submit({})).json()["id"]
    await api.service.store.claim("w", 2, 30.0)
    fresh = (await api.submit({})).json()["id"]

    assert_problem(await api.call("POST", f"/orders/{fresh}/retry"), 409, "failed or cancelled")
    assert_problem(await api.call("POST", f"/orders/{queued}/retry"), 409)
    assert_problem(await api.call("POST", f"/orders/{running}/retry"), 409)
    assert_problem(await api.call("POST", "/orders/nope/retry"), 404)


async def always_fails(order: Order) -> None:
    raise RuntimeError(f"broken run {order.attempts}")


@pytest.mark.parametrize("kind", STORE_KINDS)
async def test_a_retried_order_gets_a_fresh_attempts_budget(kind: str, tmp_path: Path) -> None:
    settings = Settings(db="memory://", max_attempts=2, backoff_base=0.0, backoff_max=0.0,
                        workers=1)
    async with running_api(kind, tmp_path, settings) as api:
        order_id = (await api.submit({})).json()["id"]
        workers = Workers(api.service.store, settings, always_fails)
        await workers.start()
        try:
            first = await _final(api, order_id)
            assert (first["status"], first["attempts"]) == ("failed", 2)
            assert first["error"].endswith("broken run 2")

            assert (await api.call("POST", f"/orders/{order_id}/retry")).status == 202
            second = await _final(api, order_id)
        finally:
            await workers.stop()
    assert (second["status"], second["attempts"]) == ("failed", 2)
    [past] = second["history"]
    assert (past["status"], past["attempts"]) == ("failed", 2)
    assert past["error"].endswith("broken run 2") and past["finished_at"]


async def _final(api: Api, order_id: str) -> dict[str, object]:
    for _ in range(3):
        reply = await api.call("GET", f"/orders/{order_id}?wait=10")
        order: dict[str, object] = reply.json()
        if order["status"] in ("succeeded", "failed", "cancelled"):
            return order
        await asyncio.sleep(0.1)
    raise AssertionError(f"order not final: {order}")
