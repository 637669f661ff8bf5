"""Fair share on PostgreSQL with several processes (a store each, on one database): concurrent
batches of one group take distinct turns (the group's row is locked until each commits),
batches touching the same groups in any order never deadlock, concurrent claimers share one
virtual clock, and the claim still reads the ready index."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from skipline.domain.fairness import TAG_SCALE
from skipline.domain.models import Lease, NewOrder
from skipline.store.postgres import PostgresStore
from skipline.testing import make_new_order, submit_all
from tests.integration.postgres_stores import OpenStore

pytestmark = pytest.mark.postgres

LEASE = 60.0


def of(owner: str, count: int) -> list[NewOrder]:
    return [make_new_order(owner=owner, payload={"n": n}) for n in range(count)]


async def test_concurrent_batches_of_one_group_from_many_processes_take_distinct_turns(
    open_store: OpenStore,
) -> None:
    stores = [await open_store() for _ in range(4)]
    per_store = [of("heavy", 150) for _ in stores]

    await asyncio.gather(*(
        submit_all(store, news, chunk=50) for store, news in zip(stores, per_store, strict=True)
    ))

    leases = await claim_all_of(stores[0])
    tags = sorted(lease.order.start_tag for lease in leases)
    assert tags == [n * TAG_SCALE for n in range(600)], "every order its own turn, none skipped"
    assert await stores[1].fair_position(1, ("regular", "heavy", "")) == (
        599 * TAG_SCALE, 600 * TAG_SCALE)


async def test_batches_naming_the_same_groups_in_any_order_never_deadlock(
    open_store: OpenStore,
) -> None:
    stores = [await open_store() for _ in range(4)]
    groups = ["a", "b", "c", "d", "e"]
    batches = []
    for index, _ in enumerate(stores):
        order = groups[index:] + groups[:index]
        if index % 2:
            order.reverse()
        batches.append([new for _ in range(20) for owner in order for new in of(owner, 1)])

    await asyncio.wait_for(asyncio.gather(*(
        submit_all(store, news, chunk=100) for store, news in zip(stores, batches, strict=True)
    )), timeout=60)

    leases = await claim_all_of(stores[0])
    per_group = Counter(lease.order.owner for lease in leases)
    assert per_group == dict.fromkeys(groups, 80)
    first_round = {lease.order.owner for lease in leases[:5]}
    assert first_round == set(groups), "the first five claims take one order of each group"


async def test_claimers_in_many_processes_keep_the_groups_alternating(
    open_store: OpenStore,
) -> None:
    stores = [await open_store() for _ in range(3)]
    await submit_all(stores[0], of("heavy", 300), chunk=100)
    await submit_all(stores[0], of("light", 30), chunk=30)

    claimed = await asyncio.gather(*(claim_all_of(store, limit=4) for store in stores))

    everything = sorted((lease for batch in claimed for lease in batch),
                        key=lambda lease: lease.order.started_at or 0.0)
    light_places = [n for n, lease in enumerate(everything) if lease.order.owner == "light"]
    assert len(light_places) == 30
    assert max(light_places) < 80, f"light orders started at {light_places}"
    virtual_time, _ = await stores[2].fair_position(1, ("regular", "light", ""))
    # A claim leaves the clock to a concurrent one that is moving it (SKIP LOCKED), so it may
    # end behind the last tag by what the claims in flight took: 3 claimers of 4 here.
    assert 299 * TAG_SCALE - 12 * TAG_SCALE <= virtual_time <= 299 * TAG_SCALE


async def claim_all_of(store: PostgresStore, limit: int = 50) -> list[Lease]:
    leases: list[Lease] = []
    while batch := await store.claim("w", limit, LEASE):
        leases.extend(batch)
    return leases
