"""The worker registry: a pool signs in, beats, signs out; a row whose heartbeat is older than
its expiry is a pool that is gone, expired like a lease on the store's clock (invariant 4)."""

from __future__ import annotations

import asyncio
import time

from skipline.domain.workers import WorkerProcess, WorkerSignIn
from skipline.store.base import Store
from tests.contract.helpers import LEASE, PAST_SHORT_LEASE, SHORT_LEASE, StoreFactory
from tests.contract.test_durability import durable_only


def sign_in(worker_id: str, slots: int = 4, kinds: tuple[str, ...] = ("default",)) -> WorkerSignIn:
    return WorkerSignIn(worker_id, f"host-of-{worker_id}", 4000 + slots, kinds, slots)


def by_id(workers: list[WorkerProcess]) -> dict[str, WorkerProcess]:
    return {worker.id: worker for worker in workers}


async def test_a_registered_pool_is_listed_as_it_signed_in(store: Store) -> None:
    before = time.time()
    await store.register_worker(sign_in("w1", slots=4, kinds=("default", "mail")), LEASE)

    (listed,) = await store.list_workers()

    assert (listed.id, listed.host, listed.pid) == ("w1", "host-of-w1", 4004)
    assert listed.kinds == ("default", "mail")
    assert (listed.slots_busy, listed.slots_total) == (0, 4)
    assert listed.started_at == listed.last_heartbeat
    assert abs(listed.started_at - before) < 60, "times are seconds since the epoch"


async def test_a_heartbeat_records_busy_slots_and_the_time(store: Store) -> None:
    await store.register_worker(sign_in("w1"), LEASE)
    (signed_in,) = await store.list_workers()
    await asyncio.sleep(0.02)

    assert await store.beat_worker("w1", 3, LEASE) is True

    (beaten,) = await store.list_workers()
    assert beaten.slots_busy == 3
    assert beaten.started_at == signed_in.started_at
    assert beaten.last_heartbeat > signed_in.last_heartbeat


async def test_pools_are_listed_longest_running_first(store: Store) -> None:
    for worker_id in ("c", "a", "b"):
        await store.register_worker(sign_in(worker_id), LEASE)
        await asyncio.sleep(0.01)

    assert [worker.id for worker in await store.list_workers()] == ["c", "a", "b"]


async def test_a_graceful_stop_removes_the_pool(store: Store) -> None:
    await store.register_worker(sign_in("w1"), LEASE)
    await store.register_worker(sign_in("w2"), LEASE)

    assert await store.remove_worker("w1") is True
    assert await store.remove_worker("w1") is False

    assert [worker.id for worker in await store.list_workers()] == ["w2"]
    assert await store.beat_worker("w1", 1, LEASE) is False, "a removed pool signs in again"


async def test_signing_in_again_replaces_the_row(store: Store) -> None:
    await store.register_worker(sign_in("w1", slots=2), LEASE)
    await store.beat_worker("w1", 2, LEASE)

    await store.register_worker(sign_in("w1", slots=8), LEASE)

    (listed,) = await store.list_workers()
    assert (listed.slots_busy, listed.slots_total) == (0, 8)


async def test_an_expired_pool_is_gone_and_cannot_beat(store: Store) -> None:
    await store.register_worker(sign_in("quiet"), SHORT_LEASE)
    await store.register_worker(sign_in("alive"), SHORT_LEASE)
    await asyncio.sleep(SHORT_LEASE / 3)
    assert await store.beat_worker("alive", 1, LEASE) is True, "a beat extends the expiry"
    await asyncio.sleep(PAST_SHORT_LEASE)

    assert [worker.id for worker in await store.list_workers()] == ["alive"]
    assert await store.beat_worker("quiet", 1, LEASE) is False
    assert [worker.id for worker in await store.list_workers()] == ["alive"]


async def test_pruning_deletes_only_expired_rows(store: Store) -> None:
    await store.register_worker(sign_in("gone"), SHORT_LEASE)
    await store.register_worker(sign_in("alive"), LEASE)
    await asyncio.sleep(PAST_SHORT_LEASE)

    assert await store.prune_workers() == 1
    assert await store.prune_workers() == 0

    assert list(by_id(await store.list_workers())) == ["alive"]
    assert await store.remove_worker("gone") is False, "the expired row was deleted"


async def test_the_registry_survives_a_reopen(store_factory: StoreFactory) -> None:
    durable_only(store_factory)
    store = await store_factory.open()
    await store.register_worker(sign_in("w1", kinds=("default", "pdf")), LEASE)
    await store.beat_worker("w1", 2, LEASE)
    expected = await store.list_workers()
    await store.close()

    reopened = await store_factory.open()

    assert await reopened.list_workers() == expected
