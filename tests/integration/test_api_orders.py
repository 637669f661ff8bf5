"""POST/GET/DELETE /orders and GET /orders through a real socket and a real store: identity
decides the tier (invariant 6), idempotent submission (invariant 8), cancel, pagination."""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path

import pytest

from skipline.config import Settings
from tests.integration.api_harness import Api, assert_problem, running_api

ORDER_FIELDS = {
    "id", "tier", "priority", "status", "attempts", "created_at", "started_at", "finished_at",
    "payload", "result", "error", "customer", "callback", "history", "kind", "not_before",
    "next_attempt_at",
}


def parse_time(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


# --- submitting ------------------------------------------------------------------------------
async def test_an_anonymous_empty_order_is_accepted_as_regular(api: Api) -> None:
    reply = await api.submit({})
    assert reply.status == 202
    order = reply.json()
    assert set(order) == ORDER_FIELDS
    assert (order["tier"], order["priority"], order["status"]) == ("regular", 1, "queued")
    assert (order["attempts"], order["payload"], order["result"], order["error"]) == (0, None,
                                                                                     None, None)
    assert order["started_at"] is None and order["finished_at"] is None
    assert (order["kind"], order["not_before"], order["next_attempt_at"]) == (
        "default", None, None)
    assert parse_time(order["created_at"]).utcoffset() is not None
    assert reply.headers["Location"] == f"/orders/{order['id']}"
    fetched = await api.call("GET", reply.headers["Location"])
    assert fetched.status == 200 and fetched.json() == order


async def test_payload_and_duration_are_stored_as_given(api: Api) -> None:
    payload = {"customer": "ada", "items": [1, 2.5, None, True, {"nested": "é"}]}
    reply = await api.submit({"payload": payload, "duration": 1.5})
    assert reply.status == 202
    assert reply.json()["payload"] == payload
    stored = await api.service.store.get(reply.json()["id"])
    assert stored is not None and stored.duration == 1.5 and stored.payload == payload


async def test_order_ids_are_a_time_prefix_and_128_random_bits(api: Api) -> None:
    before_ms = time.time_ns() // 1_000_000
    ids = [(await api.submit()).json()["id"] for _ in range(5)]
    after_ms = time.time_ns() // 1_000_000
    assert all(re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]{32}", order_id) for order_id in ids), ids
    assert len({order_id.split("-")[1] for order_id in ids}) == 5
    prefixes = [int(order_id.split("-")[0], 16) for order_id in ids]
    assert before_ms <= prefixes[0] and prefixes[-1] <= after_ms
    assert prefixes == sorted(prefixes)


async def test_a_vip_key_gets_the_vip_tier(api: Api) -> None:
    vip = await api.service.add_key("acme", "vip")
    reply = await api.submit({}, key=vip)
    assert reply.status == 202
    assert (reply.json()["tier"], reply.json()["priority"]) == ("vip", 0)
    asked = await api.submit({"user_type": "vip"}, key=vip)
    assert asked.status == 202 and asked.json()["tier"] == "vip"


async def test_a_vip_key_may_ask_for_a_worse_tier(api: Api) -> None:
    vip = await api.service.add_key("acme", "vip")
    reply = await api.submit({"user_type": "regular"}, key=vip)
    assert reply.status == 202
    assert (reply.json()["tier"], reply.json()["priority"]) == ("regular", 1)


async def test_anonymous_callers_cannot_ask_for_vip(api: Api) -> None:
    assert_problem(await api.submit({"user_type": "vip"}), 403, "vip", "anonymous")
    assert await api.service.store.queued_counts() == {}


async def test_a_regular_key_cannot_ask_for_vip(api: Api) -> None:
    regular = await api.service.add_key("bob", "regular")
    assert_problem(await api.submit({"user_type": "vip"}, key=regular), 403, "vip", "bob")


async def test_an_unknown_tier_is_a_422_naming_it(api: Api) -> None:
    assert_problem(await api.submit({"user_type": "gold"}), 422, "gold")


# --- identity ----------------------------------------------------------------------------------
async def test_an_unknown_key_is_401(api: Api) -> None:
    reply = await api.submit({}, key="sk_not-a-key")
    assert_problem(reply, 401)
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert_problem(await api.call("GET", "/orders/x", key="sk_not-a-key"), 401)


@pytest.mark.parametrize(
    "header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer two words", "sk_abc", "Token x"],
)
async def test_a_malformed_authorization_header_is_401(api: Api, header: str) -> None:
    reply = await api.submit({}, headers={"Authorization": header})
    assert_problem(reply, 401, "Bearer")


async def test_a_revoked_key_is_401(api: Api) -> None:
    key = await api.service.add_key("gone", "vip")
    assert (await api.submit({}, key=key)).status == 202
    assert await api.service.store.revoke_key("gone")
    assert_problem(await api.submit({}, key=key), 401)


async def test_the_bearer_scheme_is_case_insensitive(api: Api) -> None:
    key = await api.service.add_key("acme", "vip")
    reply = await api.submit({}, headers={"Authorization": f"bearer {key}"})
    assert reply.status == 202 and reply.json()["tier"] == "vip"


async def test_without_anonymous_access_a_key_is_required(tmp_path: Path) -> None:
    settings = Settings(db="memory://", allow_anonymous=False)
    async with running_api("memory", tmp_path, settings) as api:
        assert_problem(await api.submit({}), 401)
        key = await api.service.add_key("acme", "regular")
        assert (await api.submit({}, key=key)).status == 202


# --- reading and visibility ------------------------------------------------------------------
async def test_a_key_sees_only_its_own_orders(api: Api) -> None:
    alice = await api.service.add_key("alice", "regular")
    bob = await api.service.add_key("bob", "regular")
    admin = await api.service.add_key("root", "regular", admin=True)
    order_id = (await api.submit({}, key=alice)).json()["id"]
    assert (await api.call("GET", f"/orders/{order_id}", key=alice)).status == 200
    assert_problem(await api.call("GET", f"/orders/{order_id}", key=bob), 404, order_id)
    assert_problem(await api.call("DELETE", f"/orders/{order_id}", key=bob), 404)
    assert_problem(await api.call("GET", f"/orders/{order_id}"), 404)
    assert (await api.call("GET", f"/orders/{order_id}", key=admin)).status == 200
    stored = await api.service.store.get(order_id)
    assert stored is not None and stored.status.value == "queued"


async def test_an_anonymous_order_is_readable_by_whoever_holds_its_id(api: Api) -> None:
    order_id = (await api.submit({})).json()["id"]
    bob = await api.service.add_key("bob", "regular")
    assert (await api.call("GET", f"/orders/{order_id}", key=bob)).status == 200
    assert (await api.call("GET", f"/orders/{order_id}")).status == 200


async def test_an_unknown_order_is_404(api: Api) -> None:
    assert_problem(await api.call("GET", "/orders/no-such-order"), 404, "no-such-order")


# --- idempotency -------------------------------------------------------------------------------
async def test_a_repeated_idempotency_key_returns_the_first_order(api: Api) -> None:
    key = await api.service.add_key("acme", "vip")
    headers = {"Idempotency-Key": "order-2024-0001"}
    first = await api.submit({"payload": {"n": 1}}, key=key, headers=headers)
    again = await api.submit({"payload": {"n": 1}}, key=key, headers=headers)
    assert (first.status, again.status) == (202, 200)
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    reused = await api.submit({"payload": {"n": 2}}, key=key, headers=headers)
    assert_problem(reused, 422, "order-2024-0001", "different request")
    assert (await api.service.store.queued_counts()) == {"vip": 1}
    other = await api.submit({}, key=key, headers={"Idempotency-Key": "order-2024-0002"})
    assert other.status == 202 and other.json()["id"] != first.json()["id"]


async def test_idempotency_keys_belong_to_one_api_key(api: Api) -> None:
    alice = await api.service.add_key("alice", "regular")
    bob = await api.service.add_key("bob", "regular")
    headers = {"Idempotency-Key": "same"}
    first = await api.submit({}, key=alice, headers=headers)
    second = await api.submit({}, key=bob, headers=headers)
    assert (first.status, second.status) == (202, 202)
    assert first.json()["id"] != second.json()["id"]


async def test_only_first_submissions_count_as_accepted(api: Api) -> None:
    headers = {"Idempotency-Key": "k1"}
    assert (await api.submit({}, headers=headers)).status == 202
    assert (await api.submit({}, headers=headers)).status == 200
    text = (await api.call("GET", "/metrics")).body.decode()
    assert 'skipline_orders_accepted_total{tier="regular"} 1.0' in text


# --- cancelling --------------------------------------------------------------------------------
async def test_cancelling_a_queued_order(api: Api) -> None:
    order_id = (await api.submit({})).json()["id"]
    reply = await api.call("DELETE", f"/orders/{order_id}")
    assert reply.status == 200
    assert reply.json()["status"] == "cancelled" and reply.json()["finished_at"] is not None
    assert_problem(await api.call("DELETE", f"/orders/{order_id}"), 409)
    assert (await api.call("GET", f"/orders/{order_id}")).json()["status"] == "cancelled"


async def test_a_running_order_cannot_be_cancelled(api: Api) -> None:
    order_id = (await api.submit({})).json()["id"]
    leases = await api.service.store.claim("worker-1", 1, 30.0)
    assert [lease.order.id for lease in leases] == [order_id]
    assert_problem(await api.call("DELETE", f"/orders/{order_id}"), 409)
    running = (await api.call("GET", f"/orders/{order_id}")).json()
    assert (running["status"], running["attempts"]) == ("running", 1)
    assert running["started_at"] is not None


async def test_cancelling_an_unknown_order_is_404(api: Api) -> None:
    assert_problem(await api.call("DELETE", "/orders/nope"), 404)


# --- listing -----------------------------------------------------------------------------------
async def test_listing_pages_through_own_orders_newest_first(api: Api) -> None:
    alice = await api.service.add_key("alice", "regular")
    bob = await api.service.add_key("bob", "regular")
    mine = [(await api.submit({"payload": {"n": n}}, key=alice)).json()["id"] for n in range(5)]
    await api.submit({}, key=bob)
    seen: list[str] = []
    cursor: str | None = None
    for expected_size in (2, 2, 1):
        path = "/orders?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await api.call("GET", path, key=alice)).json()
        assert set(page) == {"orders", "next_cursor"}
        assert len(page["orders"]) == expected_size
        seen += [order["id"] for order in page["orders"]]
        cursor = page["next_cursor"]
    assert cursor is None
    assert seen == list(reversed(mine))


async def test_listing_filters_by_status_and_tier(api: Api) -> None:
    admin = await api.service.add_key("root", "vip", admin=True)
    vip_id = (await api.submit({}, key=admin)).json()["id"]
    regular_id = (await api.submit({})).json()["id"]
    cancelled_id = (await api.submit({})).json()["id"]
    await api.call("DELETE", f"/orders/{cancelled_id}")

    async def ids(query: str) -> list[str]:
        reply = await api.call("GET", "/orders" + query, key=admin)
        assert reply.status == 200, reply.body
        return [order["id"] for order in reply.json()["orders"]]

    assert await ids("") == [cancelled_id, regular_id, vip_id]
    assert await ids("?status=cancelled") == [cancelled_id]
    assert await ids("?tier=vip") == [vip_id]
    assert await ids("?tier=regular&status=queued") == [regular_id]


async def test_listing_needs_a_key(api: Api) -> None:
    assert_problem(await api.call("GET", "/orders"), 401)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("status=done", "status"), ("limit=0", "limit"), ("limit=501", "limit"),
        ("limit=ten", "limit"), ("limit=-1", "limit"), ("cursor=bogus", "cursor"),
        ("cursor=c2VxOjA", "cursor"), ("tier=gold", "tier"), ("colour=red", "colour"),
        ("limit=1&limit=2", "limit"),
    ],
)
async def test_invalid_listing_parameters_are_422(api: Api, query: str, named: str) -> None:
    key = await api.service.add_key("alice", "regular")
    assert_problem(await api.call("GET", f"/orders?{query}", key=key), 422, named)


async def test_the_largest_page_is_allowed(api: Api) -> None:
    key = await api.service.add_key("alice", "regular")
    reply = await api.call("GET", "/orders?limit=500", key=key)
    assert reply.status == 200 and reply.json() == {"orders": [], "next_cursor": None}
