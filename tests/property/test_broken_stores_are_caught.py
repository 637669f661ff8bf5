"""The property suite must be able to fail: each test here breaks the memory store in one way
(a wrong claim order, a missing fence, prefetch, retention deleting the wrong orders...) and
checks that the state machine finds it, with a message that names the broken rule. Shrinking
is skipped to keep this fast."""

from __future__ import annotations

from collections.abc import Callable, Collection, Coroutine, Sequence
from typing import Any
from weakref import WeakKeyDictionary

import pytest
from hypothesis import Phase
from hypothesis.stateful import run_state_machine_as_test

from skipline.domain import scheduling
from skipline.domain.models import Lease, NewOrder, Order, Status
from skipline.store import memory
from skipline.store.base import Store
from skipline.store.memory import MemoryStore
from tests.property.queue_machine import PROPERTY_SETTINGS, QueueMachine

ClaimKey = Callable[[Order, float], tuple[int, int, int, int]]
FIND_ONLY = PROPERTY_SETTINGS.__class__(
    PROPERTY_SETTINGS, max_examples=400, phases=[Phase.generate]
)


class MemoryMachine(QueueMachine):
    async def open_store(self) -> Store:
        return MemoryStore(self.clock)


PickClaims = Callable[[Sequence[Order], float, int, Collection[str] | None], list[Order]]


def of_kinds(orders: Sequence[Order], kinds: Collection[str] | None) -> list[Order]:
    """What a mutant claim rule keeps right: the kinds it was asked for."""
    return [o for o in orders if kinds is None or o.kind in kinds]


def claim_sorted_by(key: ClaimKey) -> PickClaims:
    """A claim rule that sorts the ready orders by `key` instead of the real claim key."""

    def broken(
        orders: Sequence[Order], now: float, limit: int, kinds: Collection[str] | None = None,
    ) -> list[Order]:
        ready = [o for o in of_kinds(orders, kinds) if scheduling.is_ready(o, now)]
        return sorted(ready, key=lambda o: key(o, now))[:limit]

    return broken


def late(order: Order, now: float) -> bool:
    return scheduling.is_overdue(order, now)


BROKEN_CLAIM_RULES: dict[str, tuple[ClaimKey, str]] = {
    "priority reversed": (
        lambda o, now: (0, 0, 0, o.seq) if late(o, now) else (1, -o.priority, o.start_tag, o.seq),
        "a better priority must be served first",
    ),
    "LIFO among equals": (
        lambda o, now: (0, 0, 0, o.seq) if late(o, now) else (1, o.priority, o.start_tag, -o.seq),
        "FIFO among equal priorities",
    ),
    "FIFO only, no fair share": (
        lambda o, now: (0, 0, 0, o.seq) if late(o, now) else (1, o.priority, 0, o.seq),
        "fair share: an earlier turn must be served first",
    ),
    "max_wait ignored": (
        lambda o, now: (1, o.priority, o.start_tag, o.seq),
        "an overdue order must be served before any order that is not"
        "|overdue orders go oldest first",
    ),
    "overdue newest first": (
        lambda o, now: (0, 0, 0, -o.seq) if late(o, now) else (1, o.priority, o.start_tag, o.seq),
        "overdue orders go oldest first",
    ),
}


def expect_caught(fragment: str) -> None:
    with pytest.raises(AssertionError, match=fragment):
        run_state_machine_as_test(MemoryMachine, settings=FIND_ONLY)


@pytest.mark.parametrize("mutant", sorted(BROKEN_CLAIM_RULES))
def test_a_wrong_claim_order_is_caught(mutant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    key, fragment = BROKEN_CLAIM_RULES[mutant]
    monkeypatch.setattr(memory, "pick_claims", claim_sorted_by(key))
    expect_caught(fragment)


def test_claiming_orders_still_in_backoff_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    def ignores_backoff(
        orders: Sequence[Order], now: float, limit: int, kinds: Collection[str] | None = None,
    ) -> list[Order]:
        queued = [o for o in of_kinds(orders, kinds) if o.status is Status.QUEUED]
        return sorted(queued, key=lambda o: scheduling.claim_key(o, now))[:limit]

    monkeypatch.setattr(memory, "pick_claims", ignores_backoff)
    expect_caught("which was not ready")


def test_claiming_a_scheduled_order_before_it_is_due_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def ignores_not_before(
        orders: Sequence[Order], now: float, limit: int, kinds: Collection[str] | None = None,
    ) -> list[Order]:
        queued = [
            o for o in of_kinds(orders, kinds)
            if o.status is Status.QUEUED and (o.available_at <= now or o.attempts == 0)]
        return sorted(queued, key=lambda o: scheduling.claim_key(o, now))[:limit]

    monkeypatch.setattr(memory, "pick_claims", ignores_not_before)
    expect_caught("scheduled-until=[^,]*, which was not ready")


def test_claiming_another_kind_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = scheduling.pick_claims
    monkeypatch.setattr(
        memory, "pick_claims", lambda orders, now, limit, kinds=None: real(orders, now, limit))
    expect_caught("for a worker serving only")


def test_prefetching_an_extra_order_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = scheduling.pick_claims
    monkeypatch.setattr(
        memory, "pick_claims",
        lambda o, now, limit, kinds=None: real(o, now, limit + 1, kinds))
    expect_caught("asked for")


def test_completion_without_fencing_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    def any_token(store: MemoryStore, order_id: str, token: str) -> bool:
        order = store._orders.get(order_id)
        return order is not None and order.status is Status.RUNNING

    monkeypatch.setattr(MemoryStore, "_holds", any_token)
    expect_caught("stale")


def test_claiming_a_leased_order_twice_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real_claim = MemoryStore.claim

    async def claims_expired_leases(
        store: MemoryStore, worker_id: str, limit: int, lease_seconds: float,
        kinds: Sequence[str] | None = None,
    ) -> list[Lease]:
        await store.rescue_expired(max_rescues=1_000_000)
        return await real_claim(store, worker_id, limit, lease_seconds, kinds)

    monkeypatch.setattr(MemoryStore, "claim", claims_expired_leases)
    # Caught at the second claim, or earlier by the counts: the store has the order queued
    # again while the model (and its worker) still holds it.
    expect_caught(r"two workers hold one order|the model expects|stats\(\) for \w+: .* model")


PruneChoice = Callable[[Order, float], bool]
"""Whether a broken retention deletes an order, given the cutoff (now - older_than)."""


def finished_before(order: Order, cutoff: float) -> bool:
    return order.finished_at is not None and order.finished_at < cutoff


def pruning(
    doomed: PruneChoice, newest_first: bool = False, limit_ignored: bool = False,
) -> Callable[[MemoryStore, float, int], Coroutine[Any, Any, int]]:
    """A prune_finished that deletes the orders `doomed` picks, in the given order."""

    async def broken(store: MemoryStore, older_than: float, limit: int) -> int:
        cutoff = store._clock.now() - older_than
        chosen = sorted(
            (o for o in store._orders.values() if doomed(o, cutoff)),
            key=lambda o: o.finished_at or o.created_at, reverse=newest_first,
        )
        if not limit_ignored:
            chosen = chosen[:limit]
        for order in chosen:
            del store._orders[order.id]
            if order.idempotency_key is not None:
                store._idempotency.pop((order.owner, order.idempotency_key), None)
        return len(chosen)

    return broken


BROKEN_PRUNES: dict[str, tuple[Callable[..., Any], str]] = {
    "deletes queued and running orders": (
        pruning(lambda o, cutoff: (o.finished_at or o.created_at) < cutoff),
        "which is (queued|running)",
    ),
    "ignores the limit": (
        pruning(finished_before, limit_ignored=True), "asked to prune at most",
    ),
    "deletes at the cutoff (<= for <)": (
        pruning(lambda o, cutoff: o.finished_at is not None and o.finished_at <= cutoff),
        "which finished only",
    ),
    "newest finished first": (
        pruning(finished_before, newest_first=True), "the longest finished go first",
    ),
}


@pytest.mark.parametrize("mutant", sorted(BROKEN_PRUNES))
def test_a_wrong_prune_is_caught(mutant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    broken, fragment = BROKEN_PRUNES[mutant]
    monkeypatch.setattr(MemoryStore, "prune_finished", broken)
    expect_caught(fragment)


def test_keeping_a_pruned_orders_idempotency_key_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store forgets the order but its key still answers replays (with the dead order)."""
    real_prune, real_submit = MemoryStore.prune_finished, MemoryStore.submit
    ghosts: WeakKeyDictionary[MemoryStore, dict[tuple[str, str], Order]] = WeakKeyDictionary()

    async def prune_keeping_keys(store: MemoryStore, older_than: float, limit: int) -> int:
        before = dict(store._orders)
        deleted = await real_prune(store, older_than, limit)
        for order in before.values():
            if order.id not in store._orders and order.idempotency_key is not None:
                key = (order.owner, order.idempotency_key)
                ghosts.setdefault(store, {})[key] = order
        return deleted

    async def submit_replaying_ghosts(store: MemoryStore, new: NewOrder) -> tuple[Order, bool]:
        ghost = ghosts.get(store, {}).get((new.owner, new.idempotency_key or ""))
        if ghost is not None:
            return ghost, False
        return await real_submit(store, new)

    monkeypatch.setattr(MemoryStore, "prune_finished", prune_keeping_keys)
    monkeypatch.setattr(MemoryStore, "submit", submit_replaying_ghosts)
    expect_caught("a replay of key|was not created")
