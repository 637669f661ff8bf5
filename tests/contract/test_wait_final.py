"""`wait_final`: a waiter is answered as soon as its order becomes final (whatever finished
it), or after its time with the order as it is then; nothing polls in between."""

from __future__ import annotations

import asyncio
import time

from skipline.domain.models import Status
from skipline.store.base import Store
from skipline.testing import make_new_order
from tests.contract.helpers import LEASE, PAST_SHORT_LEASE, SHORT_LEASE


async def _finished_within(store: Store, order_id: str, finish: object) -> tuple[Status, float]:
    waiter = asyncio.create_task(store.wait_final(order_id, 10.0))
    await asyncio.sleep(0.2)
    assert not waiter.done(), "wait_final returned before the order finished"
    started = time.monotonic()
    assert asyncio.iscoroutine(finish)
    await finish
    order = await asyncio.wait_for(waiter, 5.0)
    assert order is not None
    return order.status, time.monotonic() - started


async def test_a_completion_answers_its_waiter_at_once(store: Store) -> None:
    order, _ = await store.submit(make_new_order())
    (lease,) = await store.claim("w", 1, LEASE)

    status, elapsed = await _finished_within(
        store, order.id, store.complete(order.id, lease.token, {"ok": True}))

    assert status is Status.SUCCEEDED
    assert elapsed < 1.0


async def test_a_failure_for_good_and_a_cancel_answer_their_waiters(store: Store) -> None:
    failing, _ = await store.submit(make_new_order())
    (lease,) = await store.claim("w", 1, LEASE)
    status, _ = await _finished_within(
        store, failing.id, store.fail(failing.id, lease.token, "boom", None))
    assert status is Status.FAILED

    queued, _ = await store.submit(make_new_order())
    status, elapsed = await _finished_within(store, queued.id, store.cancel(queued.id))
    assert status is Status.CANCELLED
    assert elapsed < 1.0


async def test_a_retry_does_not_answer_the_waiter(store: Store) -> None:
    order, _ = await store.submit(make_new_order())
    (lease,) = await store.claim("w", 1, LEASE)
    waiter = asyncio.create_task(store.wait_final(order.id, 0.8))
    await asyncio.sleep(0.1)

    await store.fail(order.id, lease.token, "again", 0.0)
    await asyncio.sleep(0.2)

    assert not waiter.done()
    answered = await waiter
    assert answered is not None and answered.status is Status.QUEUED


async def test_a_poisoned_rescue_answers_its_waiter(store: Store) -> None:
    order, _ = await store.submit(make_new_order())
    await store.claim("w", 1, SHORT_LEASE)
    await asyncio.sleep(PAST_SHORT_LEASE)

    status, _ = await _finished_within(store, order.id, store.rescue_expired(0))

    assert status is Status.FAILED


async def test_without_a_finish_the_waiter_gets_the_order_as_it_is_after_its_time(
    store: Store,
) -> None:
    order, _ = await store.submit(make_new_order())
    started = time.monotonic()

    answered = await store.wait_final(order.id, 0.5)

    assert answered is not None and answered.status is Status.QUEUED
    assert 0.45 <= time.monotonic() - started < 2.0


async def test_a_final_order_and_an_unknown_one_answer_at_once(store: Store) -> None:
    order, _ = await store.submit(make_new_order())
    await store.cancel(order.id)
    started = time.monotonic()

    final = await store.wait_final(order.id, 10.0)
    missing = await store.wait_final("no-such-order", 10.0)

    assert final is not None and final.status is Status.CANCELLED
    assert missing is None
    assert time.monotonic() - started < 1.0


async def test_many_waiters_on_one_order_are_all_answered(store: Store) -> None:
    order, _ = await store.submit(make_new_order())
    waiters = [asyncio.create_task(store.wait_final(order.id, 10.0)) for _ in range(50)]
    await asyncio.sleep(0.2)

    await store.cancel(order.id)
    answered = await asyncio.wait_for(asyncio.gather(*waiters), 5.0)

    assert {found.status for found in answered if found is not None} == {Status.CANCELLED}
    assert len(answered) == 50
