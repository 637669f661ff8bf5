"""Fair-share groups over HTTP: who may name a customer, where the customer shows, the
per-customer cap (429), and that the claim order follows the groups' turns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from skipline.config import Settings, parse_tiers
from skipline.service import OrderService
from tests.integration.api_harness import STORE_KINDS, Api, assert_problem, running_api

CAPPED_TIERS = parse_tiers({"tiers": {
    "vip": {"priority": 0},
    "regular": {"priority": 1, "max_queued_per_customer": 3},
}})


@pytest.fixture(params=STORE_KINDS)
async def capped(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(db="memory://", tiers=CAPPED_TIERS)
    async with running_api(request.param, tmp_path, settings) as running:
        yield running


async def test_a_customers_key_names_its_customer_and_sees_it_everywhere(api: Api) -> None:
    shop = await api.service.add_key("shop", "regular", customers=True)

    submitted = await api.submit({"customer": "c-42"}, key=shop)
    order_id = submitted.json()["id"]
    fetched = await api.call("GET", f"/orders/{order_id}", key=shop)
    listed = await api.call("GET", "/orders?customer=c-42", key=shop)
    other = await api.call("GET", "/orders?customer=c-7", key=shop)

    assert submitted.status == 202
    assert submitted.json()["customer"] == "c-42"
    assert fetched.json()["customer"] == "c-42"
    assert [o["id"] for o in listed.json()["orders"]] == [order_id]
    assert other.json()["orders"] == []


async def test_an_order_without_a_customer_shows_null(api: Api) -> None:
    reply = await api.submit({})

    assert reply.status == 202
    assert reply.json()["customer"] is None


async def test_a_key_without_customers_may_not_name_one(api: Api) -> None:
    plain = await api.service.add_key("plain", "regular")

    reply = await api.submit({"customer": "x"}, key=plain)

    problem = assert_problem(reply, 403, "plain", "--customers")
    assert problem["type"] == "urn:skipline:problem:customer-not-allowed"


async def test_anonymous_callers_may_not_name_a_customer(api: Api) -> None:
    reply = await api.submit({"customer": "x"})

    assert_problem(reply, 403, "anonymous")


@pytest.mark.parametrize("customer", ["", "x" * 129, "tab\there", "caf\u00e9"])
async def test_a_customer_is_1_to_128_printable_ascii_characters(api: Api, customer: str) -> None:
    shop = await api.service.add_key("shop", "regular", customers=True)

    reply = await api.submit({"customer": customer}, key=shop)

    assert_problem(reply, 422, "customer")


async def test_a_customer_over_its_cap_gets_429_while_others_are_accepted(capped: Api) -> None:
    shop = await capped.service.add_key("shop", "regular", customers=True)
    for _ in range(3):
        assert (await capped.submit({"customer": "heavy"}, key=shop)).status == 202

    refused = await capped.submit({"customer": "heavy"}, key=shop)
    other = await capped.submit({"customer": "light"}, key=shop)
    anonymous = await capped.submit({})

    problem = assert_problem(refused, 429, "heavy", "max_queued_per_customer")
    assert problem["type"] == "urn:skipline:problem:max-queued-per-customer"
    assert other.status == 202
    assert anonymous.status == 202


async def test_the_cap_frees_up_as_the_customers_orders_are_claimed(capped: Api) -> None:
    shop = await capped.service.add_key("shop", "regular", customers=True)
    for _ in range(3):
        await capped.submit({"customer": "heavy"}, key=shop)
    assert (await capped.submit({"customer": "heavy"}, key=shop)).status == 429

    await capped.service.store.claim("w", 2, 30.0)

    assert (await capped.submit({"customer": "heavy"}, key=shop)).status == 202


async def test_claims_alternate_between_a_keys_customers(api: Api) -> None:
    shop = await api.service.add_key("shop", "regular", customers=True, weight=2)
    solo = await api.service.add_key("solo", "regular")
    ids: dict[str, str] = {}
    for name, key, customer in [
        ("x1", shop, "x"), ("x2", shop, "x"), ("x3", shop, "x"), ("x4", shop, "x"),
        ("s1", solo, None), ("s2", solo, None), ("y1", shop, "y"),
    ]:
        body = {} if customer is None else {"customer": customer}
        ids[(await api.submit(body, key=key)).json()["id"]] = name

    leases = await api.service.store.claim("w", 7, 30.0)

    assert [ids[lease.order.id] for lease in leases] == [
        "x1", "s1", "y1", "x2", "x3", "s2", "x4",
    ]


async def test_add_key_refuses_a_weight_out_of_range(tmp_path: Path) -> None:
    async with running_api("memory", tmp_path) as api:
        service: OrderService = api.service
        with pytest.raises(Exception, match="weight"):
            await service.add_key("heavy", "regular", weight=0)


async def test_an_idempotency_key_reused_for_another_customer_is_422(api: Api) -> None:
    shop = await api.service.add_key("shop", "regular", customers=True)
    key = {"Idempotency-Key": "order-7"}

    first = await api.submit({"customer": "x"}, key=shop, headers=key)
    again = await api.submit({"customer": "x"}, key=shop, headers=key)
    other = await api.submit({"customer": "y"}, key=shop, headers=key)

    assert (first.status, again.status) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    assert_problem(other, 422, "Idempotency-Key")
