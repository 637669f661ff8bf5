"""A pool serving a handler registry, against every store: it claims only its kinds and runs
each with its own handler; a kind's `concurrency` caps its running orders in the process while
other kinds use the free slots; a kind's `timeout` and `max_attempts` override the process's;
a scheduled order runs once due, not before."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from skipline import Handlers
from skipline.config import Settings
from skipline.domain.models import JSON, Order, Status
from skipline.runtime import Workers
from skipline.store.base import Store
from skipline.testing import make_new_order
from tests.store_kinds import ALL_STORE_KINDS, opened_store

PROMPT = 10.0


@pytest.fixture(params=ALL_STORE_KINDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    async for opened in opened_store(request):
        yield opened


def fast(**overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        db="memory://", workers=4, lease_seconds=5.0, drain_timeout=1.0, order_timeout=10.0,
        max_attempts=3, backoff_base=0.05, backoff_max=0.1,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def running() -> AsyncIterator[list[Workers]]:
    started: list[Workers] = []
    yield started
    for workers in started:
        await workers.drain(1.0)


async def start(started: list[Workers], store: Store, settings: Settings, handlers: Handlers
                ) -> Workers:
    workers = Workers(store, settings, handlers)
    started.append(workers)
    await workers.start()
    return workers


async def final(store: Store, order_id: str) -> Order:
    deadline = time.monotonic() + PROMPT
    while time.monotonic() < deadline:
        order = await store.get(order_id)
        assert order is not None
        if order.status.is_final:
            return order
        await asyncio.sleep(0.02)
    raise AssertionError(f"order {order_id} never finished")


async def test_a_pool_runs_only_its_kinds_each_with_its_handler(
    store: Store, running: list[Workers],
) -> None:
    handlers = Handlers()

    @handlers.kind("ship")
    async def ship(order: Order) -> JSON:
        return {"by": "ship"}

    @handlers.kind("receipt")
    async def receipt(order: Order) -> JSON:
        return {"by": "receipt"}

    workers = await start(running, store, fast(), handlers)
    assert workers.pool.kinds == ["receipt", "ship"]
    ids = {}
    for kind in ("ship", "receipt", "refund"):
        ids[kind] = (await store.submit(make_new_order(kind=kind)))[0].id
    assert (await final(store, ids["ship"])).result == {"by": "ship"}
    assert (await final(store, ids["receipt"])).result == {"by": "receipt"}
    await asyncio.sleep(0.2)
    refund = await store.get(ids["refund"])
    assert refund is not None and refund.status is Status.QUEUED and refund.attempts == 0


async def test_a_kinds_concurrency_caps_it_while_others_use_the_slots(
    store: Store, running: list[Workers],
) -> None:
    handlers = Handlers()
    now_running = {"ship": 0, "mail": 0}
    most = {"ship": 0, "mail": 0}
    release = asyncio.Event()
    full = asyncio.Event()

    def counted(kind: str) -> Any:
        async def handler(order: Order) -> JSON:
            now_running[kind] += 1
            most[kind] = max(most[kind], now_running[kind])
            if now_running == {"ship": 1, "mail": 3}:
                full.set()
            try:
                await release.wait()
            finally:
                now_running[kind] -= 1
            return None
        return handler

    handlers.add("ship", counted("ship"), concurrency=1)
    handlers.add("mail", counted("mail"))
    await start(running, store, fast(workers=4), handlers)
    ids = [(await store.submit(make_new_order(kind="ship")))[0].id for _ in range(4)]
    ids += [(await store.submit(make_new_order(kind="mail")))[0].id for _ in range(3)]
    await asyncio.wait_for(full.wait(), PROMPT)  # one ship, and the other slots for mail
    await asyncio.sleep(0.2)  # no claim may start a second ship meanwhile
    assert now_running == {"ship": 1, "mail": 3}
    release.set()
    for order_id in ids:
        assert (await final(store, order_id)).status is Status.SUCCEEDED
    assert most == {"ship": 1, "mail": 3}


async def test_a_kinds_timeout_and_max_attempts_override_the_process(
    store: Store, running: list[Workers],
) -> None:
    handlers = Handlers()

    @handlers.kind("slow", timeout=0.2, max_attempts=1)
    async def slow(order: Order) -> JSON:
        await asyncio.sleep(5.0)
        return None

    await start(running, store, fast(order_timeout=30.0, max_attempts=5), handlers)
    order, _ = await store.submit(make_new_order(kind="slow"))
    started = time.monotonic()
    done = await final(store, order.id)
    assert done.status is Status.FAILED and done.attempts == 1
    assert done.error is not None and "0.2 s" in done.error
    assert time.monotonic() - started < 3.0


async def test_a_scheduled_order_runs_once_due(store: Store, running: list[Workers]) -> None:
    ran_at: list[float] = []

    async def note(order: Order) -> JSON:
        ran_at.append(time.time())
        return None

    await start(running, store, fast(), Handlers.single(note))
    due = time.time() + 0.5
    order, _ = await store.submit(make_new_order(not_before=due))
    assert (await final(store, order.id)).status is Status.SUCCEEDED
    assert len(ran_at) == 1 and ran_at[0] >= due - 0.01
