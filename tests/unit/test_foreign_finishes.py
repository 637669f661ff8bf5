"""Reading waited orders back after another process's commit (store/sqlite/foreign_finishes.py),
with a real FinishWatch whose waiters read their orders from a MemoryStore (standing in for the
file another process writes to): ids go CHUNK to a read, only the waiters of final orders are
answered, commits seen during a read-back start ONE more read-back (not one per commit), and a
failed read makes every waiter look again."""

from __future__ import annotations

import asyncio
from functools import partial

from skipline.domain.errors import StoreUnavailable
from skipline.domain.models import Order
from skipline.store.finishes import FinishWatch
from skipline.store.memory import MemoryStore
from skipline.store.sqlite.foreign_finishes import CHUNK, ForeignFinishes
from skipline.testing import make_new_order

WAIT = 20.0


class Other:
    """The 'other process': its store, and the read-backs made of it."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.reads: list[list[str]] = []
        self.broken = False
        self.gate = asyncio.Event()
        self.gate.set()

    async def final_among(self, order_ids: list[str]) -> list[str]:
        self.reads.append(order_ids)
        await self.gate.wait()
        if self.broken:
            raise StoreUnavailable("the file is gone")
        found = [await self.store.get(order_id) for order_id in order_ids]
        return [order.id for order in found if order is not None and order.status.is_final]

    async def orders(self, count: int) -> list[Order]:
        return [(await self.store.submit(make_new_order()))[0] for _ in range(count)]


async def parked(watch: FinishWatch, other: Other, orders: list[Order],
                 ) -> list[asyncio.Task[Order | None]]:
    waiters = [asyncio.create_task(watch.wait(order.id, partial(other.store.get, order.id), WAIT))
               for order in orders]
    await asyncio.sleep(0.01)
    assert watch.waiting == len(orders)
    return waiters


async def settled(waiters: list[asyncio.Task[Order | None]]) -> set[str]:
    """The ids whose waiters answered (after a moment for any wrongly woken one to answer);
    the rest are cancelled."""
    await asyncio.sleep(0.05)
    answered = {order.id for task in waiters if task.done() and (order := task.result())}
    for task in waiters:
        task.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    return answered


async def test_ids_are_read_a_chunk_at_a_time_and_only_final_ones_are_woken() -> None:
    watch, other = FinishWatch(), Other()
    foreign = ForeignFinishes(watch, other.final_among)
    orders = await other.orders(2 * CHUNK + 1)
    waiters = await parked(watch, other, orders)
    finished = {orders[0].id, orders[CHUNK].id, orders[2 * CHUNK].id}
    for order_id in finished:
        await other.store.cancel(order_id)  # the other process's finish: nobody here is told

    foreign.commit_seen()

    assert await settled(waiters) == finished
    assert [len(read) for read in other.reads] == [CHUNK, CHUNK, 1]


async def test_commits_seen_during_a_read_back_start_one_more_not_one_each() -> None:
    watch, other = FinishWatch(), Other()
    foreign = ForeignFinishes(watch, other.final_among)
    orders = await other.orders(2)
    waiters = await parked(watch, other, orders)
    other.gate.clear()

    foreign.commit_seen()
    await asyncio.sleep(0.01)
    for _ in range(5):
        foreign.commit_seen()
    await other.store.cancel(orders[1].id)
    other.gate.set()

    assert await settled(waiters) == {orders[1].id}
    assert len(other.reads) == 2


async def test_a_failed_read_makes_every_waiter_look_again() -> None:
    watch, other = FinishWatch(), Other()
    foreign = ForeignFinishes(watch, other.final_among)
    orders = await other.orders(2)
    reads_of_waiters = []

    async def look(order_id: str) -> Order | None:
        reads_of_waiters.append(order_id)
        return await other.store.get(order_id)

    waiters = [asyncio.create_task(watch.wait(order.id, partial(look, order.id), WAIT))
               for order in orders]
    await asyncio.sleep(0.01)
    other.broken = True

    foreign.commit_seen()
    await asyncio.sleep(0.05)

    assert sorted(reads_of_waiters) == sorted(2 * [order.id for order in orders])
    assert await settled(waiters) == set()


async def test_close_ends_a_read_back_under_way() -> None:
    watch, other = FinishWatch(), Other()
    foreign = ForeignFinishes(watch, other.final_among)
    waiters = await parked(watch, other, await other.orders(1))
    other.gate.clear()
    foreign.commit_seen()
    await asyncio.sleep(0.01)

    await asyncio.wait_for(foreign.close(), 1.0)
    foreign.commit_seen()  # a new read-back starts: the closed one no longer counts as running
    other.gate.set()
    await asyncio.sleep(0.01)

    assert len(other.reads) == 2
    assert await settled(waiters) == set()


async def test_the_first_waiter_starts_the_looks_and_any_waiting_follows_the_waiters() -> None:
    other = Other()
    started: list[bool] = []
    watch = FinishWatch(on_first_waiter=lambda: started.append(watch.any_waiting()))
    orders = await other.orders(2)

    waiters = await parked(watch, other, orders)
    assert started == [True], "called once, after the first waiter was parked"
    assert sorted(watch.waited_ids()) == sorted(order.id for order in orders)
    for order in orders:
        await other.store.cancel(order.id)
    watch.finished(order.id for order in orders)

    assert await settled(waiters) == {order.id for order in orders}
    assert not watch.any_waiting()
