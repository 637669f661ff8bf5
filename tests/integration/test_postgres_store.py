"""What the PostgreSQL store adds to the contract: several stores on one database (as several
processes would have) never claim an order twice; idempotency keys, API keys and cancellation
hold across them; claims use the partial index; leases are on the database clock; durability
decides synchronous_commit."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import asyncpg
import pytest

from skipline.domain.errors import InvalidOrder, KeyExists, OrderNotCancellable
from skipline.domain.models import ApiKey, Lease, OrderQuery, Status
from skipline.store.postgres import PostgresStore
from skipline.store.queries import load_queries
from skipline.testing import make_new_order, submit_all
from tests.integration.postgres_stores import OpenStore

pytestmark = pytest.mark.postgres

LEASE = 60.0


async def claim_until_empty(store: PostgresStore, worker: str, limit: int) -> list[Lease]:
    leases: list[Lease] = []
    while claimed := await store.claim(worker, limit, LEASE):
        assert len(claimed) <= limit
        leases.extend(claimed)
    return leases


async def test_concurrent_claimers_on_many_stores_never_share_an_order(
    open_store: OpenStore,
) -> None:
    stores = [await open_store() for _ in range(4)]
    orders = await submit_all(stores[0], [make_new_order() for _ in range(600)])

    per_worker = await asyncio.gather(*(
        claim_until_empty(stores[i % 4], f"w{i}", limit=3 + i) for i in range(8)
    ))

    claimed = Counter(lease.order.id for leases in per_worker for lease in leases)
    assert set(claimed) == {order.id for order in orders}
    assert set(claimed.values()) == {1}
    for leases in per_worker:
        seqs = [lease.order.seq for lease in leases]
        assert seqs == sorted(seqs), "one claimer must take orders in FIFO order"


@pytest.mark.parametrize("kinds", [None, ["ship", "mail"]])
async def test_a_claim_walks_the_partial_index_of_ready_orders(
    open_store: OpenStore, postgres_url: str, kinds: list[str] | None,
) -> None:
    store = await open_store()
    kind_names = ("ship", "mail", "refund")
    await submit_all(store, [
        make_new_order(priority=i % 3, kind=kind_names[i // 3 % 3]) for i in range(3000)
    ], chunk=500)
    scans = await plan_of(postgres_url, "claim", "w", 5, LEASE, kinds)

    assert any(node.get("Index Name") == "orders_ready" for node in scans)
    assert not any(
        node.get("Node Type") == "Seq Scan" and node.get("Relation Name") == "orders"
        for node in scans
    )


async def test_promoting_due_orders_walks_only_the_waiting_index(
    open_store: OpenStore, postgres_url: str,
) -> None:
    store = await open_store()
    later = time.time() + 86400.0
    await submit_all(store, [make_new_order(not_before=later) for _ in range(3000)], chunk=500)
    await submit_all(store, [make_new_order() for _ in range(3000)], chunk=500)
    scans = await plan_of(postgres_url, "promote_due")

    assert any(node.get("Index Name") == "orders_waiting" for node in scans)
    assert not any(node.get("Index Name") == "orders_ready" for node in scans)
    assert not any(
        node.get("Node Type") == "Seq Scan" and node.get("Relation Name") == "orders"
        for node in scans
    )


async def plan_of(postgres_url: str, query: str, *args: Any) -> list[Any]:
    """The nodes of the plan of named `query` with `args`, after ANALYZE."""
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute("ANALYZE orders")
        plan = await connection.fetchval(
            "EXPLAIN (FORMAT JSON) " + load_queries("postgres")[query], *args)
    finally:
        await connection.close()
    return list(plan_nodes(json.loads(plan) if isinstance(plan, str) else plan))


def plan_nodes(plan: Any) -> Any:
    """Every node of an EXPLAIN (FORMAT JSON) plan."""
    if isinstance(plan, list):
        for item in plan:
            yield from plan_nodes(item)
    elif isinstance(plan, dict):
        if "Node Type" in plan:
            yield plan
        for value in plan.values():
            if isinstance(value, (list, dict)):
                yield from plan_nodes(value)


async def test_leases_are_measured_on_the_database_clock(
    open_store: OpenStore, postgres_url: str,
) -> None:
    store = await open_store()
    order, _ = await store.submit(make_new_order())
    await store.claim("w", 1, 42.0)
    connection = await asyncpg.connect(postgres_url)
    try:
        remaining = await connection.fetchval(
            "SELECT extract(epoch FROM lease_expires_at - now())::float8 FROM orders"
            " WHERE id = $1", order.id,
        )
    finally:
        await connection.close()

    assert 40.0 < remaining <= 42.0


async def test_one_idempotency_key_gives_one_order_across_stores(open_store: OpenStore) -> None:
    first, second = await open_store(), await open_store()
    attempts = [make_new_order(owner="shop", idempotency_key="order-77") for _ in range(10)]

    results = await asyncio.gather(*(
        (first if i % 2 else second).submit(new) for i, new in enumerate(attempts)
    ))

    assert len({order.id for order, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert len(await first.list_orders(OrderQuery(limit=1000))) == 1


async def test_api_keys_are_shared_and_unique_across_stores(open_store: OpenStore) -> None:
    first, second = await open_store(), await open_store()
    keys = [ApiKey("shop", "vip", False, f"hash-{i}", 1_700_000_000.0) for i in range(2)]

    results = await asyncio.gather(
        first.add_key(keys[0]), second.add_key(keys[1]), return_exceptions=True,
    )

    assert sorted(type(r).__name__ for r in results) == ["KeyExists", "NoneType"]
    winner = keys[results.index(None)]
    assert await second.find_key(winner.key_hash) == winner
    assert await first.revoke_key("shop") is True
    found = await second.find_key(winner.key_hash)
    assert found is not None and found.revoked
    with pytest.raises(KeyExists):
        await second.add_key(keys[0])


async def test_cancellation_holds_across_stores(open_store: OpenStore) -> None:
    api, worker = await open_store(), await open_store()
    running, queued = await submit_all(api, [make_new_order(), make_new_order()], chunk=1)
    (lease,) = await worker.claim("w", 1, LEASE)
    assert lease.order.id == running.id

    with pytest.raises(OrderNotCancellable):
        await api.cancel(running.id)
    cancelled = await api.cancel(queued.id)

    assert cancelled.status is Status.CANCELLED
    assert await worker.claim("w", 5, LEASE) == []


async def test_a_payload_that_is_not_json_fails_alone(open_store: OpenStore) -> None:
    store = await open_store()
    good = [make_new_order(payload={"n": i}) for i in range(5)]
    bad = make_new_order(payload={"n": float("nan")})

    results = await asyncio.gather(
        *(store.submit(new) for new in [*good[:2], bad, *good[2:]]), return_exceptions=True,
    )

    assert isinstance(results[2], InvalidOrder)
    accepted = [r for r in results if isinstance(r, tuple)]
    assert [order.payload for order, _ in accepted] == [{"n": i} for i in range(5)]


async def test_concurrent_submissions_keep_their_arrival_order(open_store: OpenStore) -> None:
    store = await open_store()
    news = [make_new_order() for _ in range(300)]

    results = await asyncio.gather(*(store.submit(new) for new in news))

    seqs = [order.seq for order, _ in results]
    assert [order.id for order, _ in results] == [new.id for new in news]
    assert seqs == sorted(seqs)


@pytest.mark.parametrize(("durability", "expected"), [("full", "on"), ("normal", "off")])
async def test_durability_sets_synchronous_commit(
    open_store: OpenStore, durability: str, expected: str,
) -> None:
    store = await open_store(durability=durability)

    async with store._connection() as connection:
        setting = await connection.fetchval("SHOW synchronous_commit")

    assert setting == expected


async def test_an_error_text_with_a_nul_character_is_still_recorded(open_store: OpenStore) -> None:
    store = await open_store()
    order, _ = await store.submit(make_new_order())
    (lease,) = await store.claim("w", 1, LEASE)

    status = await store.fail(order.id, lease.token, "bad\x00byte", None)

    stored = await store.get(order.id)
    assert status is Status.FAILED
    assert stored is not None and stored.error == "bad\ufffdbyte"
