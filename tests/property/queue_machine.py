"""A hypothesis state machine that drives a real store with random sequences of submit (with
and without an idempotency key), claim, complete, fail (retry or dead letter), heartbeat,
release, a worker hanging past its lease, lease rescue, clock advance, cancel and retention
(prune_finished), and checks the store against `QueueModel` after every step.

A subclass says how to open its store (`open_store`) and, if the store keeps time elsewhere,
how to move it (`clock_moved`); everything else is shared, so every backend faces the same
rules and the same invariants. Times in the model are seconds since the machine started; every
duration used is a multiple of 0.5 s so float arithmetic is exact and the `<= now` boundaries
(overdue, backoff, lease expiry) are hit exactly, not approximately.

Between a lease running out and `rescue_expired`, the store may still honour the old token or
refuse it (the contract leaves that window open); the model then follows what the store did,
and any other behaviour is an error. Retention is the same: when orders finished at the same
moment and only some of them fit under the limit, the store may delete any of them; the model
checks that the choice was a valid one and then forgets what the store deleted. Pruned orders
stay in the machine's bundles, so later steps also use ids and leases of deleted orders (which
must then be unknown, or refused as stale).

Failed checks name the broken rule and print the whole queue as the model sees it; run with
--hypothesis-show-statistics to see how often the interesting situations (overdue next to
on-time orders, backoffs, expired leases, ties in finish time at a prune's limit...) occur.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    precondition,
    rule,
)

from skipline.clock import FakeClock
from skipline.config import parse_tiers
from skipline.domain.errors import OrderNotCancellable, OrderNotFound
from skipline.domain.models import NewOrder, Order, OrderQuery, Status
from skipline.store.base import Store
from tests.property.queue_model import (
    ModelOrder,
    QueueModel,
    claim_problems,
    expected_claim,
    prunable,
    prune_problems,
)

T = TypeVar("T")

START = 1_700_000_000.0
TIERS = parse_tiers(
    {
        "tiers": {
            "vip": {"priority": 0},
            "regular": {"priority": 5, "max_wait": 12},
            "batch": {"priority": 9, "max_wait": 4, "fairness": "fifo"},
        }
    },
    "property-test tiers",
)
WORKERS = ("w1", "w2", "w3")
LEASES = (4.0, 20.0)
MAX_RESCUES = 1
"""Low, so a second lost lease dead-letters the order (the poison path) within a short run."""
KEY_OWNER = "alice"
GROUPS = (("", "", 1), (KEY_OWNER, "", 1), ("bob", "", 2), ("shop", "x", 3), ("shop", "y", 3))
"""(owner, customer, weight) of the fair-share groups that submit: anonymous, two keys of
their own, and a key's two customers; weights 1 to 3 (the batch tier is fifo: one line)."""
KINDS = ("default", "ship")
CLAIM_KINDS: tuple[tuple[str, ...] | None, ...] = (None, None, None, ("ship",), ("default",))
"""What a claim serves: every kind (most often, so that orders keep moving), or one."""
SCHEDULES = (None, None, None, -1.0, 0.0, 2.0, 6.0)
"""Seconds from now an order is scheduled for (None: not scheduled; a past or present
not_before is due at once)."""
IDEMPOTENCY_KEYS = ("k1", "k2", "k3")
"""Few, so keys are often replayed, and reused once retention deleted their order."""
PRUNE_AGES = (0.0, 0.5, 5.0, 30.0)
"""Fixed retentions; the prune rule also draws ones around the ages of finished orders."""
PRUNE_AGE_OFFSETS = (-0.5, 0.0, 0.5)
"""An age exactly (kept: the cutoff is strict), just under (deleted) and just over (kept)."""

PROPERTY_SETTINGS = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
"""Deterministic and bounded: the same programs run in CI every time."""


@dataclass(frozen=True)
class LeaseRef:
    """A lease as one worker holds it; may go stale while the worker still has it."""

    order_id: str
    token: str
    worker: str


class QueueMachine(RuleBasedStateMachine):
    """Random workloads against one store; the model says what must be true."""

    orders = Bundle("orders")
    leases = Bundle("leases")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock(START)
        self.model = QueueModel(TIERS)
        self.holders: dict[str, str] = {}  # token -> worker
        self.steps = 0
        self.store = self.run(self._open())

    # --- plumbing ----------------------------------------------------------------------------
    async def open_store(self) -> Store:
        raise NotImplementedError

    async def close_store(self) -> None:
        await self.store.close()

    async def clock_moved(self) -> None:
        """Called after every clock advance, for a store that keeps time elsewhere."""

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.run(self.clock_moved())

    async def _open(self) -> Store:
        store = await self.open_store()
        await store.open()
        return store

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(work)

    def teardown(self) -> None:
        try:
            self.run(self.close_store())
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    @property
    def now(self) -> float:
        return self.clock.now() - START

    def record(self, order_id: str) -> ModelOrder:
        return self.model.orders[order_id]

    def lease_state(self, lease: LeaseRef) -> str:
        """'held' (live lease), 'expired' (ran out, not yet rescued: either outcome is
        allowed) or 'lost' (the order moved on, or was pruned: the store must refuse the
        token)."""
        order = self.model.orders.get(lease.order_id)
        if order is None or order.token != lease.token:
            return "lost"
        return "held" if order.lease_until > self.now else "expired"

    # --- client side -------------------------------------------------------------------------
    @rule(target=orders, submissions=st.lists(
        st.tuples(
            st.sampled_from(sorted(TIERS)), st.sampled_from(GROUPS), st.sampled_from(KINDS),
            st.sampled_from(SCHEDULES),
        ),
        min_size=1, max_size=4,
    ))
    def submit(
        self, submissions: list[tuple[str, tuple[str, str, int], str, float | None]],
    ) -> MultipleResults[str]:
        """Accept orders one after another, in the order given, each from its group, of its
        kind, some scheduled for later."""
        return multiple(*(
            self.submit_one(tier, group=group, kind=kind, delay=delay)
            for tier, group, kind, delay in submissions))

    @rule(target=orders, tier=st.sampled_from(sorted(TIERS)),
          key=st.sampled_from(IDEMPOTENCY_KEYS))
    def submit_with_key(self, tier: str, key: str) -> str:
        """A submission with an Idempotency-Key: a replay while the key's order exists, a new
        order once retention deleted it."""
        return self.submit_one(tier, key)

    def submit_one(
        self, tier: str, key: str | None = None, group: tuple[str, str, int] | None = None,
        kind: str = "default", delay: float | None = None,
    ) -> str:
        spec = TIERS[tier]
        owner, customer, weight = group or (GROUPS[1] if key else GROUPS[0])
        not_before = None if delay is None else self.now + delay
        new = NewOrder(
            id=str(uuid.uuid4()), tier=tier, priority=spec.priority, payload={"n": 1},
            max_wait=spec.max_wait, owner=owner, idempotency_key=key, customer=customer,
            weight=weight, fifo=spec.fairness == "fifo", kind=kind,
            not_before=None if not_before is None else START + not_before,
        )
        stored, created = self.run(self.store.submit(new))
        holder = None if key is None else self.model.keys.get(key)
        if holder is not None:
            record = self.record(holder)
            assert not created and stored.id == holder, (
                f"a replay of key {key} gave {stored.id} (created={created}); "
                f"the key belongs to {record.label}"
            )
            self.check_order(stored, record)
            note(f"replayed key {key}: {record.label}")
            return holder
        reused = key is not None and any(
            o.idempotency_key == key for o in self.model.pruned.values()
        )
        assert created, (
            "a submission without an idempotency key was not created" if key is None
            else f"a submission with key {key}, free "
            f"{'since its order was pruned' if reused else 'as never used'}, was not created"
        )
        assert stored.id == new.id, f"submission of {new.id} returned order {stored.id}"
        previous = self.model.last_seq
        assert previous is None or stored.seq > previous, (
            f"acceptance sequence went backwards (or reused a pruned order's seq): "
            f"{stored.seq} after {previous}"
        )
        record = self.model.accept(
            new.id, tier, stored.seq, self.now, key, owner, customer, weight, kind, not_before,
        )
        self.check_order(stored, record)
        if reused:
            event("submit: an idempotency key reused after its order was pruned")
        note(f"submitted {record.label}{f' key={key}' if key else ''} at t=+{self.now:g}s")
        return new.id

    @rule(order=orders)
    def cancel(self, order: str) -> None:
        if order in self.model.pruned:
            with pytest.raises(OrderNotFound):
                self.run(self.store.cancel(order))
            return
        record = self.record(order)
        if record.status is not Status.QUEUED:
            with pytest.raises(OrderNotCancellable):
                self.run(self.store.cancel(order))
            return
        cancelled = self.run(self.store.cancel(order))
        assert cancelled.status is Status.CANCELLED, f"cancel({record.label}) left it {cancelled}"
        self.model.finish(record, Status.CANCELLED, self.now)

    @rule()
    def cancel_unknown(self) -> None:
        with pytest.raises(OrderNotFound):
            self.run(self.store.cancel(str(uuid.uuid4())))

    # --- worker side -------------------------------------------------------------------------
    @rule(
        target=leases, worker=st.sampled_from(WORKERS), limit=st.integers(2, 4),
        lease_seconds=st.sampled_from(LEASES), kinds=st.sampled_from(CLAIM_KINDS),
    )
    def claim(
        self, worker: str, limit: int, lease_seconds: float, kinds: tuple[str, ...] | None,
    ) -> MultipleResults[LeaseRef]:
        """A worker with `limit` free slots claims (no prefetch: never more than that), for
        the kinds it serves."""
        return self.claim_slots(worker, limit, lease_seconds, kinds)

    @rule(target=leases, worker=st.sampled_from(WORKERS), lease_seconds=st.sampled_from(LEASES),
          kinds=st.sampled_from(CLAIM_KINDS))
    def claim_one(
        self, worker: str, lease_seconds: float, kinds: tuple[str, ...] | None,
    ) -> MultipleResults[LeaseRef]:
        """The common case, a worker with one free slot (also makes claims twice as likely:
        the claim is where the rule under test runs)."""
        return self.claim_slots(worker, 1, lease_seconds, kinds)

    def claim_slots(
        self, worker: str, limit: int, lease_seconds: float,
        kinds: tuple[str, ...] | None = None,
    ) -> MultipleResults[LeaseRef]:
        now = self.now
        ready = self.model.ready(now, kinds)
        expected = expected_claim(list(self.model.orders.values()), now, limit, kinds)
        got = self.run(self.store.claim(
            worker, limit, lease_seconds, None if kinds is None else list(kinds)))
        claimed = [self.claimed_record(lease.order, lease.token) for lease in got]
        note(
            f"claim by {worker} (limit={limit}, kinds={kinds}) at t=+{now:g}s: ready "
            f"{[o.label for o in ready]} -> got {[o.label for o in claimed]}"
        )
        self.count_situation(ready, list(self.model.orders.values()), now, limit)
        problems = claim_problems(claimed, ready, now, limit, kinds)
        if not problems and claimed != expected:
            problems.append(
                f"claim returned {[o.label for o in claimed]} out of claim order; "
                f"expected {[o.label for o in expected]}"
            )
        assert not problems, "\n".join(problems) + "\n" + self.model.picture(now)
        refs = []
        for lease in got:
            record = self.record(lease.order.id)
            self.model.start(record, lease.token, now, lease_seconds)
            self.holders[lease.token] = worker
            self.check_order(lease.order, record)
            refs.append(LeaseRef(lease.order.id, lease.token, worker))
        return multiple(*refs)

    @staticmethod
    def count_situation(
        ready: list[ModelOrder], orders: list[ModelOrder], now: float, limit: int
    ) -> None:
        """Label the claims that could go wrong (see --hypothesis-show-statistics)."""
        if len(ready) > limit:
            event("claim: more ready than slots")
        late = {o.overdue(now) for o in ready}
        if late == {True, False}:
            event("claim: overdue and on-time orders both ready")
        on_time = [o for o in ready if not o.overdue(now)]
        if len({o.tier.priority for o in on_time}) > 1:
            event("claim: several priorities ready")
        groups = {(o.tier.priority, o.owner, o.customer) for o in on_time}
        if len(groups) > len({o.tier.priority for o in on_time}):
            event("claim: several groups ready at one priority")
        if any(o.attempts for o in ready):
            event("claim: a retried or rescued order is ready")
        if any(o.token and o.lease_until <= now for o in orders):
            event("claim: a lease has expired but is not rescued yet")
        if any(o.status is Status.QUEUED and o.available_at > now and o.attempts
               for o in orders):
            event("claim: an order is waiting out a retry backoff")
        if any(o.status is Status.QUEUED and o.available_at > now and not o.attempts
               for o in orders):
            event("claim: an order scheduled for later is queued")

    def claimed_record(self, order: Order, token: str) -> ModelOrder:
        """The model's record of a claimed order, after checking nobody else holds it."""
        assert order.id not in self.model.pruned, (
            f"claim returned {self.model.label(order.id)}, which was pruned"
        )
        record = self.model.orders.get(order.id)
        assert record is not None, f"claim returned order {order.id} that was never submitted"
        assert record.token is None, (
            f"{record.label} claimed while still held by {self.holders[record.token]}'s lease: "
            "two workers hold one order"
        )
        assert token not in self.model.tokens_seen, f"lease token reused for {record.label}"
        return record

    @rule(lease=consumes(leases))
    def complete(self, lease: LeaseRef) -> None:
        state = self.lease_state(lease)
        done = self.run(self.store.complete(lease.order_id, lease.token, {"ok": True}))
        label = self.model.label(lease.order_id)
        if state == "lost":
            assert not done, f"complete({label}) with a stale token succeeded: no fencing"
        if state == "held":
            assert done, f"complete({label}) refused although {lease.worker} holds its lease"
        if done:
            self.model.finish(self.record(lease.order_id), Status.SUCCEEDED, self.now)

    @rule(lease=consumes(leases), retry_delay=st.sampled_from([0.0, 1.5, 30.0]))
    def fail_and_retry(self, lease: LeaseRef, retry_delay: float) -> None:
        """The handler failed; the order is retried after a backoff, keeping its place."""
        self.fail(lease, retry_delay)

    @rule(lease=consumes(leases))
    def fail_for_good(self, lease: LeaseRef) -> None:
        """The handler failed for the last time: dead letter."""
        self.fail(lease, None)

    def fail(self, lease: LeaseRef, retry_delay: float | None) -> None:
        state = self.lease_state(lease)
        status = self.run(self.store.fail(lease.order_id, lease.token, "boom", retry_delay))
        label = self.model.label(lease.order_id)
        wanted = Status.FAILED if retry_delay is None else Status.QUEUED
        if state == "lost":
            assert status is None, f"fail({label}) with a stale token was accepted"
        if state == "held":
            assert status is wanted, f"fail({label}, {retry_delay}) gave {status}"
        if status is None:
            return
        assert status is wanted, f"fail({label}, {retry_delay}) gave {status}"
        record = self.record(lease.order_id)
        if retry_delay is None:
            self.model.finish(record, Status.FAILED, self.now)
        else:
            self.model.requeue(record, self.now + retry_delay)

    @rule(lease=leases, lease_seconds=st.sampled_from(LEASES))
    def heartbeat(self, lease: LeaseRef, lease_seconds: float) -> None:
        state = self.lease_state(lease)
        held = self.run(self.store.heartbeat([(lease.order_id, lease.token)], lease_seconds))
        label = self.model.label(lease.order_id)
        assert held <= {lease.order_id}, f"heartbeat reported ids it was not given: {held}"
        if state == "lost":
            assert not held, f"heartbeat renewed a stale lease of {label}"
        if state == "held":
            assert held, f"heartbeat lost {label} although {lease.worker} holds it"
        if held:
            self.record(lease.order_id).lease_until = self.now + lease_seconds

    @rule(lease=consumes(leases))
    def release(self, lease: LeaseRef) -> None:
        state = self.lease_state(lease)
        released = self.run(self.store.release([(lease.order_id, lease.token)]))
        label = self.model.label(lease.order_id)
        if state == "lost":
            assert released == 0, f"release of a stale lease of {label} was accepted"
        if state == "held":
            assert released == 1, f"release of {label} by its holder was refused"
        if released:
            self.model.requeue(self.record(lease.order_id), self.now)

    # --- time --------------------------------------------------------------------------------
    @rule(seconds=st.sampled_from([0.5, 1.0, 2.5, 5.0, 9.0]))
    def advance_clock(self, seconds: float) -> None:
        self.advance(seconds)
        note(f"clock now t=+{self.now:g}s")

    @precondition(lambda self: any(o.token for o in self.model.orders.values()))
    @rule()
    def a_worker_hangs(self) -> None:
        """The holder of the soonest-expiring lease stops heartbeating: time passes until that
        lease has run out, and no reaper has run yet (the window in which a second claim must
        still not take the order)."""
        held = [o for o in self.model.orders.values() if o.token is not None]
        order = min(held, key=lambda o: o.lease_until)
        self.advance(max(0.0, order.lease_until - self.now) + 0.5)
        worker = self.holders[order.token or ""]
        note(f"{worker} hangs on {order.label}; clock now t=+{self.now:g}s")

    @rule()
    def rescue_expired(self) -> None:
        now = self.now
        expired = self.model.expired(now)
        touched = self.run(self.store.rescue_expired(MAX_RESCUES))
        assert touched == len(expired), (
            f"rescue_expired touched {touched}; expired leases: {[o.label for o in expired]}\n"
            + self.model.picture(now)
        )
        for order in expired:
            order.rescues += 1
            if order.rescues > MAX_RESCUES:
                self.model.finish(order, Status.FAILED, now)
            else:
                self.model.requeue(order, now)

    @precondition(lambda self: any(o.token for o in self.model.orders.values()))
    @rule()
    def let_every_lease_expire(self) -> None:
        """A crash of every worker: all leases run out, then the reaper runs."""
        running = [o.lease_until for o in self.model.orders.values() if o.token is not None]
        self.advance(max(0.5, max(running) - self.now + 0.5))
        note(f"all leases expired; clock now t=+{self.now:g}s")
        self.rescue_expired()

    # --- retention ---------------------------------------------------------------------------
    @precondition(
        lambda self: any(o.finished_at is not None for o in self.model.orders.values())
    )
    @rule(data=st.data(), limit=st.integers(1, 4))
    def prune(self, data: st.DataObject, limit: int) -> None:
        """Retention deletes at most `limit` orders finished more than `older_than` ago, the
        longest finished first. `older_than` is a fixed age, or the age of a finished order
        exactly (kept), or half a second either side of it. Only once something has finished:
        earlier, a prune would spend a step on what every other step already checks."""
        now = self.now
        ages = sorted({
            now - o.finished_at for o in self.model.orders.values() if o.finished_at is not None
        })
        ages_drawn = st.sampled_from(PRUNE_AGES)
        if ages:
            ages_drawn |= st.builds(
                lambda age, offset: max(0.0, age + offset),
                st.sampled_from(ages), st.sampled_from(PRUNE_AGE_OFFSETS),
            )
        older_than = data.draw(ages_drawn, label="older_than")
        orders = list(self.model.orders.values())
        eligible = prunable(orders, now, older_than)
        self.count_prune_situation(orders, eligible, now, older_than, limit)
        count = self.run(self.store.prune_finished(older_than, limit))
        listed = {o.id for o in self.run(self.store.list_orders(OrderQuery(limit=100_000)))}
        deleted = [o for o in orders if o.id not in listed]
        note(
            f"prune(older_than={older_than:g}, limit={limit}) at t=+{now:g}s: prunable "
            f"{[o.label for o in eligible]} -> {count}, deleted {[o.label for o in deleted]}"
        )
        problems = prune_problems(deleted, eligible, count, limit, now, older_than)
        assert not problems, "\n".join(problems) + "\n" + self.model.picture(now)
        for order in deleted:
            assert self.run(self.store.get(order.id)) is None, (
                f"get({order.label}) still finds it after prune_finished deleted it"
            )
        self.model.forget(deleted)

    @staticmethod
    def count_prune_situation(
        orders: list[ModelOrder], eligible: list[ModelOrder], now: float, older_than: float,
        limit: int,
    ) -> None:
        """Label the prunes that could go wrong (see --hypothesis-show-statistics)."""
        if eligible:
            event("prune: something to delete")
        if len(eligible) > limit:
            event("prune: more prunable than the limit")
            if eligible[limit - 1].finished_at == eligible[limit].finished_at:
                event("prune: orders finished together straddle the limit")
        if any(o.finished_at == now - older_than for o in orders):
            event("prune: an order finished exactly older_than ago")
        if any(o.token is not None or o.status is Status.QUEUED for o in orders):
            event("prune: queued or running orders present")

    # --- invariants --------------------------------------------------------------------------
    def check_order(self, stored: Order, record: ModelOrder) -> None:
        """The stored order matches the model in everything the rule depends on."""
        expected_overdue = None if record.overdue_at is None else START + record.overdue_at
        wanted = {
            "status": record.status, "tier": record.tier.name,
            "priority": record.tier.priority, "seq": record.seq, "attempts": record.attempts,
            "rescues": record.rescues, "overdue_at": expected_overdue,
            "finished_at": None if record.finished_at is None else START + record.finished_at,
            "idempotency_key": record.idempotency_key, "owner": record.owner,
            "customer": record.customer, "start_tag": record.turn, "kind": record.kind,
            "not_before": None if record.not_before is None else START + record.not_before,
        }
        if record.status is Status.QUEUED:
            wanted["available_at"] = START + record.available_at
        actual = {name: getattr(stored, name) for name in wanted}
        assert actual == wanted, (
            f"{record.label} in the store is {actual}, the model expects {wanted}"
        )

    @invariant()
    def every_order_is_stored_once_as_the_model_says(self) -> None:
        """Nothing lost, nothing invented, each order in exactly one state: the model's.
        One `list_orders` reads them all; `get` is checked on one order per step in turn."""
        listed = self.run(self.store.list_orders(OrderQuery(limit=100_000)))
        by_id = {order.id: order for order in listed}
        assert len(by_id) == len(listed), "list_orders returned an order twice"
        lost = [o.label for o in self.model.orders.values() if o.id not in by_id]
        assert not lost, f"orders lost: {lost}"
        assert set(by_id) == set(self.model.orders), "list_orders invented orders"
        for record in self.model.orders.values():
            self.check_order(by_id[record.id], record)
        if self.model.orders:
            self.steps += 1
            records = list(self.model.orders.values())
            record = records[self.steps % len(records)]
            stored = self.run(self.store.get(record.id))
            assert stored is not None, f"get({record.label}) found nothing"
            self.check_order(stored, record)

    @invariant()
    def counts_add_up(self) -> None:
        stats = self.run(self.store.stats())
        table = self.model.counts()
        for tier, counts in stats.counts.items():
            actual = {s: getattr(counts, s.value) for s in Status}
            wanted = table.get(tier, dict.fromkeys(Status, 0))
            assert actual == wanted, f"stats() for {tier}: {actual}, model: {wanted}"
        missing = [t for t, row in table.items() if t not in stats.counts and any(row.values())]
        assert not missing, f"stats() has no counts for {missing}"
        queued = {t: n for t, n in self.run(self.store.queued_counts()).items() if n}
        wanted_queued = {t: row[Status.QUEUED] for t, row in table.items() if row[Status.QUEUED]}
        assert queued == wanted_queued, f"queued_counts() {queued}, model {wanted_queued}"
