"""`next_due`: how long until the earliest waiting order (scheduled, or backing off) of some
kinds comes due, which bounds an idle pool's wait so that the order starts when due rather
than at the next poll (docs/scheduling.md, "When a waiting order comes due")."""

from __future__ import annotations

import asyncio
import time

import pytest

from skipline.domain.scheduling import DUE_LOOKAHEAD
from skipline.store.base import Store
from skipline.testing import make_new_order
from tests.contract.helpers import LEASE

MINUTE = 60.0
SLACK = 2.0
"""Seconds a due time may drift between the submission and the read on a loaded machine."""


def about(seconds: float | None, expected: float) -> bool:
    return seconds is not None and expected - SLACK < seconds <= expected + 0.01


async def schedule(store: Store, kind: str, ahead: float) -> str:
    order, _ = await store.submit(make_new_order(kind=kind, not_before=time.time() + ahead))
    return order.id


async def test_nothing_waiting_is_none_even_with_ready_orders(store: Store) -> None:
    assert await store.next_due() is None
    await store.submit(make_new_order())

    assert await store.next_due() is None
    assert await store.next_due(["default"]) is None


async def test_it_is_the_earliest_due_of_the_kinds_asked(store: Store) -> None:
    await schedule(store, "ship", 3 * MINUTE)
    await schedule(store, "refund", MINUTE)
    await schedule(store, "ship", 2 * MINUTE)

    assert about(await store.next_due(), MINUTE)
    assert about(await store.next_due(["refund"]), MINUTE)
    assert about(await store.next_due(["ship"]), 2 * MINUTE)
    assert about(await store.next_due(["ship", "mail"]), 2 * MINUTE)
    assert await store.next_due(["mail"]) is None


async def test_a_backlog_of_other_kinds_gives_a_bound_no_later_than_ours(store: Store) -> None:
    for i in range(DUE_LOOKAHEAD + 3):
        await schedule(store, "refund", MINUTE + i)
    await schedule(store, "ship", 5 * MINUTE)

    due = await store.next_due(["ship"])

    # A store may answer sooner than the first "ship" order (it read only a few entries), never
    # later, and never sooner than the first waiting order of any kind.
    assert due is not None and MINUTE - SLACK < due <= 5 * MINUTE + 0.01


async def test_a_retry_backing_off_is_waiting(store: Store) -> None:
    order, _ = await store.submit(make_new_order(kind="ship"))
    (lease,) = await store.claim("w", 1, LEASE)
    assert await store.fail(order.id, lease.token, "boom", MINUTE) is not None

    assert about(await store.next_due(["ship"]), MINUTE)
    assert await store.next_due(["refund"]) is None


@pytest.mark.parametrize("cancel", [False, True])
async def test_a_due_order_reads_due_until_claimed_or_cancelled(store: Store, cancel: bool) -> None:
    order_id = await schedule(store, "ship", 0.3)
    await asyncio.sleep(0.45)

    due = await store.next_due(["ship"])
    assert due is not None and due <= 0.0
    if cancel:
        await store.cancel(order_id)
    else:
        (lease,) = await store.claim("w", 5, LEASE, ["ship"])
        assert lease.order.id == order_id

    assert await store.next_due(["ship"]) is None
