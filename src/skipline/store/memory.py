"""In-memory store: the reference implementation of the Store protocol, for tests and for the
tutorial's behaviour. Nothing survives the process (invariant 1 exempts it)."""

from __future__ import annotations

import heapq
import math
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from functools import partial

from msgspec.structs import replace as replace_order

from skipline.clock import Clock, SystemClock
from skipline.domain.errors import (
    KeyExists,
    OrderNotCancellable,
    OrderNotFound,
    OrderNotRequeueable,
)
from skipline.domain.fairness import GroupKey, advance, assign_tags
from skipline.domain.models import (
    JSON,
    ApiKey,
    Delivery,
    Lease,
    NewOrder,
    Order,
    OrderQuery,
    PastRun,
    QueueHealth,
    Status,
    StoreStats,
    TierCounts,
)
from skipline.domain.reporting import RECENT_WAITS, THROUGHPUT_WINDOW
from skipline.domain.scheduling import pick_claims
from skipline.store.finishes import FinishWatch, Waiting
from skipline.store.memory_callbacks import MemoryCallbacks
from skipline.store.memory_health import queue_health
from skipline.store.memory_workers import MemoryWorkerRegistry
from skipline.store.wakeup import WakeUp, wait_on


def matches(query: OrderQuery, order: Order) -> bool:
    """Whether `order` is one `query` lists (ignoring its limit)."""
    wanted = (
        (query.owner, order.owner), (query.status, order.status), (query.tier, order.tier),
        (query.customer, order.customer), (query.kind, order.kind),
    )
    return all(want is None or want == have for want, have in wanted) and (
        query.before_seq is None or order.seq < query.before_seq)


def _counts_by(orders: Iterable[Order], name: Callable[[Order], str]) -> dict[str, TierCounts]:
    """Orders per status, per tier or per kind (`name`)."""
    counts: dict[str, dict[str, int]] = {}
    for order in orders:
        by_status = counts.setdefault(name(order), {})
        by_status[order.status.value] = by_status.get(order.status.value, 0) + 1
    return {key: TierCounts(**c) for key, c in counts.items()}


def _recent_waits_by(
    started: Iterable[Order], name: Callable[[Order], str],
) -> dict[str, list[float]]:
    """Waits of the most recently `started` orders (newest first), per tier or kind: from
    acceptance, or from `not_before` for a scheduled order."""
    waits: dict[str, list[float]] = {}
    for order in started:
        these = waits.setdefault(name(order), [])
        if len(these) < RECENT_WAITS and order.started_at is not None:
            these.append(order.started_at - max(order.created_at, order.not_before or 0.0))
    return waits


class MemoryStore(MemoryWorkerRegistry):
    """Keeps everything in dicts. One asyncio loop only."""

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock or SystemClock())
        self._orders: dict[str, Order] = {}
        self._leases: dict[str, tuple[str, float]] = {}  # order id -> (token, expires_at)
        self._idempotency: dict[tuple[str, str], str] = {}
        self._keys: dict[str, ApiKey] = {}
        self._seq = 0
        self._clocks: dict[int, int] = {}  # priority -> virtual time (domain.fairness)
        self._finishes: dict[GroupKey, int] = {}  # group -> finish tag of its last order
        self._wake: WakeUp | None = None
        self._claimed_at = -math.inf
        """When the last claim looked: what came due since is 'waiting' still for next_due,
        as the other stores' waiting flag is until a claim promotes it."""
        self._waiters = FinishWatch()
        self._callbacks = MemoryCallbacks()

    async def open(self) -> None:
        self._wake = WakeUp()

    async def close(self) -> None:
        self._wake = None

    def _notify(self) -> None:
        if self._wake is not None:
            self._wake.notify()

    async def submit(self, new: NewOrder) -> tuple[Order, bool]:
        if new.idempotency_key is not None:
            existing = self._idempotency.get((new.owner, new.idempotency_key))
            if existing is not None:
                return self._orders[existing], False
        now = self._clock.now()
        self._seq += 1
        (tag,), finishes = assign_tags((new,), self._clock_of, self._finish_of)
        self._finishes.update(finishes)
        order = new.queued(self._seq, now, new.overdue_from(now), tag)
        self._orders[order.id] = order
        if new.idempotency_key is not None:
            self._idempotency[(new.owner, new.idempotency_key)] = order.id
        self._notify()
        return order, True

    async def get(self, order_id: str) -> Order | None:
        return self._orders.get(order_id)

    def wait_final(self, order_id: str, max_seconds: float) -> Waiting:
        return self._waiters.wait(order_id, partial(self.get, order_id), max_seconds)

    async def list_orders(self, query: OrderQuery) -> list[Order]:
        found = [o for o in self._orders.values() if matches(query, o)]
        found.sort(key=lambda o: o.seq, reverse=True)
        return found[: query.limit]

    async def cancel(self, order_id: str) -> Order:
        order = self._orders.get(order_id)
        if order is None:
            raise OrderNotFound()
        if order.status is not Status.QUEUED:
            raise OrderNotCancellable()
        cancelled = replace_order(order, status=Status.CANCELLED, finished_at=self._clock.now())
        self._orders[order_id] = cancelled
        self._finished(cancelled)
        return cancelled

    async def requeue(self, order_id: str) -> Order:
        order = self._orders.get(order_id)
        if order is None:
            raise OrderNotFound()
        if order.status not in (Status.FAILED, Status.CANCELLED):
            raise OrderNotRequeueable()
        now = self._clock.now()
        due = max(order.created_at, order.not_before or 0.0)
        overdue_at = None if order.overdue_at is None else now + order.overdue_at - due
        past = PastRun(order.status, order.error, order.attempts, order.finished_at)
        queued = replace_order(
            order, status=Status.QUEUED, attempts=0, rescues=0, available_at=now,
            overdue_at=overdue_at, started_at=None, finished_at=None, result=None,
            history=(*order.history, past),
        )
        self._orders[order_id] = queued
        self._notify()
        return queued

    def _finished(self, order: Order) -> None:
        """An order became final: wake its waiters, and make its callback pending."""
        self._waiters.finished((order.id,))
        self._callbacks.order_finished(order, self._clock.now())

    async def claim(
        self, worker_id: str, limit: int, lease_seconds: float,
        kinds: Sequence[str] | None = None,
    ) -> list[Lease]:
        """Looks at every queued order, scheduled ones included: this store holds what a test
        makes."""
        now = self._clock.now()
        self._claimed_at = now
        queued = [o for o in self._orders.values() if o.status is Status.QUEUED]
        leases = []
        wanted = None if kinds is None else frozenset(kinds)
        for order in pick_claims(queued, now, limit, wanted):
            advance(self._clocks, order.priority, order.start_tag)
            token = secrets.token_hex(16)
            running = replace_order(
                order, status=Status.RUNNING, attempts=order.attempts + 1, started_at=now,
            )
            self._orders[order.id] = running
            self._leases[order.id] = (token, now + lease_seconds)
            leases.append(Lease(running, token))
        return leases

    def _holds(self, order_id: str, token: str) -> bool:
        held = self._leases.get(order_id)
        order = self._orders.get(order_id)
        return (
            held is not None and held[0] == token
            and order is not None and order.status is Status.RUNNING
        )

    async def heartbeat(self, leases: Sequence[tuple[str, str]], lease_seconds: float) -> set[str]:
        now = self._clock.now()
        held = set()
        for order_id, token in leases:
            if self._holds(order_id, token):
                self._leases[order_id] = (token, now + lease_seconds)
                held.add(order_id)
        return held

    async def complete(self, order_id: str, token: str, result: JSON) -> bool:
        if not self._holds(order_id, token):
            return False
        order = self._orders[order_id]
        done = replace_order(
            order, status=Status.SUCCEEDED, result=result, error=None,
            finished_at=self._clock.now(),
        )
        self._orders[order_id] = done
        del self._leases[order_id]
        self._finished(done)
        return True

    async def fail(
        self, order_id: str, token: str, error: str, retry_delay: float | None
    ) -> Status | None:
        if not self._holds(order_id, token):
            return None
        order = self._orders[order_id]
        now = self._clock.now()
        if retry_delay is None:
            updated = replace_order(order, status=Status.FAILED, error=error, finished_at=now)
        else:
            updated = replace_order(
                order, status=Status.QUEUED, error=error, available_at=now + retry_delay,
            )
        self._orders[order_id] = updated
        del self._leases[order_id]
        self._notify()
        if updated.status is Status.FAILED:
            self._finished(updated)
        return updated.status

    async def release(self, order_ids_tokens: Sequence[tuple[str, str]]) -> int:
        released = 0
        for order_id, token in order_ids_tokens:
            if self._holds(order_id, token):
                order = self._orders[order_id]
                self._orders[order_id] = replace_order(
                    order, status=Status.QUEUED, available_at=self._clock.now(),
                )
                del self._leases[order_id]
                released += 1
        if released:
            self._notify()
        return released

    async def rescue_expired(self, max_rescues: int) -> int:
        now = self._clock.now()
        expired = [oid for oid, (_, until) in self._leases.items() if until <= now]
        for order_id in expired:
            order = self._orders[order_id]
            del self._leases[order_id]
            if order.status is not Status.RUNNING:
                continue
            if order.rescues + 1 > max_rescues:
                self._orders[order_id] = replace_order(
                    order, status=Status.FAILED, rescues=order.rescues + 1, finished_at=now,
                    error=f"worker lost {order.rescues + 1} times (max_rescues={max_rescues})",
                )
                self._finished(self._orders[order_id])
            else:
                self._orders[order_id] = replace_order(
                    order, status=Status.QUEUED, rescues=order.rescues + 1, available_at=now,
                )
        if expired:
            self._notify()
        return len(expired)

    async def prune_finished(self, older_than: float, limit: int) -> int:
        """Looks at every order (like claim does here): this store holds what a test makes."""
        cutoff = self._clock.now() - older_than
        expired = heapq.nsmallest(limit, (
            o for o in self._orders.values()
            if o.status.is_final and o.finished_at is not None and o.finished_at < cutoff
        ), key=lambda o: o.finished_at or 0.0)
        for order in expired:
            del self._orders[order.id]
            self._callbacks.forget(order.id)
            if order.idempotency_key is not None:
                self._idempotency.pop((order.owner, order.idempotency_key), None)
        return len(expired)

    async def next_due(self, kinds: Sequence[str] | None = None) -> float | None:
        """Looks at every order (like claim does here), for the kinds asked. Waiting means
        queued for later than its acceptance (scheduled, or backing off) and not due when the
        last claim looked, like the other stores' waiting flag: so an order that came due just
        after a claim reads as due now (at most 0), not as nothing waiting."""
        due = [o.available_at for o in self._orders.values()
               if o.status is Status.QUEUED and o.available_at > o.created_at
               and o.available_at > self._claimed_at and (kinds is None or o.kind in kinds)]
        return min(due) - self._clock.now() if due else None

    async def wait_for_work(self, max_seconds: float) -> None:
        await wait_on(self._wake, max_seconds)

    async def claim_deliveries(self, limit: int, lease_seconds: float) -> list[Delivery]:
        return self._callbacks.claim(limit, lease_seconds, self._clock.now())

    async def record_delivery(
        self, order_id: str, error: str | None, retry_delay: float | None
    ) -> None:
        self._callbacks.record(order_id, error, retry_delay, self._clock.now())

    async def deliveries(self, order_ids: Sequence[str]) -> dict[str, Delivery]:
        return self._callbacks.find(order_ids)

    async def stats(self) -> StoreStats:
        now = self._clock.now()
        started = sorted(
            (o for o in self._orders.values() if o.started_at is not None),
            key=lambda o: o.started_at or 0.0, reverse=True)
        finished = sum(
            1 for o in self._orders.values()
            if o.finished_at is not None and o.finished_at >= now - THROUGHPUT_WINDOW)
        return StoreStats(
            counts=_counts_by(self._orders.values(), lambda o: o.tier),
            recent_waits=_recent_waits_by(started, lambda o: o.tier),
            finished_last_minute=finished,
            kinds=_counts_by(self._orders.values(), lambda o: o.kind),
            kind_waits=_recent_waits_by(started, lambda o: o.kind),
        )

    async def queue_health(self, window: float) -> QueueHealth:
        return queue_health(self._orders.values(), self._clock.now(), window)

    async def queued_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for order in self._orders.values():
            if order.status is Status.QUEUED:
                counts[order.tier] = counts.get(order.tier, 0) + 1
        return counts

    def _clock_of(self, priority: int) -> int:
        return self._clocks.get(priority, 0)

    def _finish_of(self, group: GroupKey) -> int:
        return self._finishes.get(group, 0)

    async def fair_position(self, priority: int, group: GroupKey) -> tuple[int, int]:
        return self._clock_of(priority), self._finish_of(group)

    async def ping(self) -> None:
        return None

    async def add_key(self, key: ApiKey) -> None:
        if key.name in self._keys:
            raise KeyExists(f"an API key named {key.name!r} already exists")
        self._keys[key.name] = key

    async def find_key(self, key_hash: str) -> ApiKey | None:
        for key in self._keys.values():
            if key.key_hash == key_hash:
                return key
        return None

    async def list_keys(self) -> list[ApiKey]:
        return sorted(self._keys.values(), key=lambda k: k.name)

    async def revoke_key(self, name: str) -> bool:
        key = self._keys.get(name)
        if key is None or key.revoked:
            return False
        self._keys[name] = replace(key, revoked=True)
        return True
