"""OrderService: accept, look up, cancel, list and report orders. Picks the tier from the
caller's identity and applies admission control. Knows no HTTP and no SQL."""

from __future__ import annotations

import os
import time
from collections.abc import Collection

import msgspec

from skipline.auth import hash_secret, new_secret, same_hash
from skipline.clock import Clock, SystemClock
from skipline.config import Settings
from skipline.domain.errors import (
    CallbackNotAllowed,
    CustomerNotAllowed,
    CustomerQueueFull,
    IdempotencyKeyReused,
    InvalidApiKey,
    InvalidKeyName,
    InvalidOrder,
    NotAuthenticated,
    OrderNotFound,
    QueueFull,
    RateLimited,
    ShuttingDown,
    TierNotAllowed,
)
from skipline.domain.fairness import MAX_WEIGHT, group_backlog
from skipline.domain.fingerprint import request_fingerprint
from skipline.domain.ids import MAX_CUSTOMER, is_customer_id, is_kind_name, is_order_id
from skipline.domain.models import (
    DEFAULT_KIND,
    JSON,
    MAX_DELAY,
    MAX_DURATION,
    MAX_WAIT,
    ApiKey,
    Caller,
    Delivery,
    NewOrder,
    Order,
    OrderQuery,
    Status,
    StoreStats,
    Tier,
)
from skipline.domain.ratelimit import RateLimiter
from skipline.domain.reporting import THROUGHPUT_WINDOW
from skipline.statscache import StatsCache
from skipline.store.base import Store

"""Longest `customer` a key may name, in characters."""
QUEUED_COUNTS_TTL = 0.25
"""Seconds a snapshot of per-tier queued counts is trusted for admission control."""
MAX_RETRY_AFTER = 60.0
"""The longest `Retry-After` a full queue asks for, in seconds."""


def new_order_id() -> str:
    """`<milliseconds since the epoch, 12 hex digits>-<128 random bits, 32 hex digits>`.

    Unguessable by its 128 bits from the OS CSPRNG (invariant 6 in docs/architecture.md asks
    for at least 122). The time prefix makes ids of orders submitted together sort together,
    so the stores' id indexes grow at their right edge: with random (version 4 UUID) ids
    every submission dirtied its own index page, which cost the SQLite store about 3 µs per
    order in page writes at commit (bench/README.md) and scattered PostgreSQL's primary key
    the same way. The prefix tells only when the order was submitted, which `created_at`
    says anyway."""
    return f"{time.time_ns() // 1_000_000:012x}-{os.urandom(16).hex()}"


class OrderSpec(msgspec.Struct, frozen=True):
    """What a caller asks for when it submits an order. (A frozen Struct, like Order: one is
    built for every POST.)"""

    payload: JSON = None
    duration: float = 0.0
    tier: str | None = None
    """The tier the caller asks for (the tutorial's `user_type`); None means its own."""
    idempotency_key: str | None = None
    customer: str | None = None
    """The calling key's own customer (keys made with --customers only)."""
    callback_url: str | None = None
    """Where to POST the outcome; must match the `[callbacks]` allow list."""
    kind: str = DEFAULT_KIND
    delay: float | None = None
    """Seconds from now before it may run (0 to 30 days); not with `not_before`."""
    not_before: float | None = None
    """When it may run at the earliest (seconds since the epoch); not with `delay`."""


MAX_CALLBACK_URL = 2048


class OrderService:
    def __init__(
        self, store: Store, settings: Settings, clock: Clock | None = None,
        kinds: Collection[str] | None = None,
    ) -> None:
        self.store = store
        self.kinds = None if kinds is None else sorted(kinds)
        """The kinds this process serves (its handler registry); None accepts any valid
        kind (an API-only process)."""
        self.settings = settings
        self._clock = clock or SystemClock()
        self.accepting = True
        self._queued_snapshot: dict[str, int] = {}
        self._queued_snapshot_at = float("-inf")
        self._in_flight: dict[str, int] = {}
        """Per tier: submissions admitted under a cap whose commit has not returned yet."""
        self._uncapped = uncapped_tiers(settings)
        self._rate_limiter = RateLimiter()
        self.anonymous = Caller(name="", tier=settings.anonymous_tier)
        """Who a request without a key is (its tier is the configured anonymous tier)."""
        self._stats = StatsCache(store.stats, settings.stats_ttl)

    # --- identity ---------------------------------------------------------------------------
    async def authenticate(self, secret: str | None) -> Caller:
        """The caller behind a bearer key, or the anonymous caller when no key is given."""
        if secret is None:
            if not self.settings.allow_anonymous:
                raise NotAuthenticated()
            return self.anonymous
        digest = hash_secret(secret)
        key = await self.store.find_key(digest)
        if key is None or key.revoked or not same_hash(key.key_hash, digest):
            raise InvalidApiKey()
        if key.tier not in self.settings.tiers:
            raise InvalidApiKey(f"the API key's tier {key.tier!r} is not configured")
        return Caller(
            name=key.name, tier=key.tier, admin=key.admin, customers=key.customers,
            weight=key.weight,
        )

    async def add_key(
        self, name: str, tier: str, admin: bool = False, customers: bool = False,
        weight: int = 1,
    ) -> str:
        """Create a key and return its secret; only its hash is stored."""
        self.tier_named(tier)
        if not name or len(name) > 64 or not name.isprintable():
            raise InvalidKeyName("key names are 1 to 64 printable characters")
        if not 1 <= weight <= MAX_WEIGHT:
            raise InvalidOrder(f"a key's weight is an integer from 1 to {MAX_WEIGHT}")
        secret = new_secret()
        record = ApiKey(
            name, tier, admin, hash_secret(secret), self._clock.now(),
            customers=customers, weight=weight,
        )
        await self.store.add_key(record)
        return secret

    # --- orders -----------------------------------------------------------------------------
    def tier_named(self, name: str) -> Tier:
        """The configured tier called `name`; InvalidOrder naming the configured ones if none."""
        tiers = self.settings.tiers
        if name not in tiers:
            raise InvalidOrder(
                f"unknown tier {name!r}; configured tiers: {', '.join(sorted(tiers))}"
            )
        return tiers[name]

    def choose_tier(self, caller: Caller, requested: str | None) -> str:
        """The caller's own tier, or a worse one it asks for; a better one is refused."""
        if requested is None or requested == caller.tier:
            return caller.tier
        if self.tier_named(requested).priority < self.settings.tiers[caller.tier].priority:
            who = "anonymous callers are" if caller.anonymous else f"key {caller.name!r} is"
            raise TierNotAllowed(f"{who} not allowed tier {requested!r}")
        return requested

    async def admit(self, caller: Caller, client: str) -> None:
        """The checks a POST passes before its body is read, cheapest first: the caller's rate
        limit, then draining and its own tier's queue cap. `submit` checks the cap again for
        the tier it chooses, right before the commit (the body was read in between)."""
        self.check_rate(caller, client)
        if not self.admits_at_once(caller.tier):
            await self.check_admission(caller.tier)

    def admits_at_once(self, tier: str) -> bool:
        """True when no queue cap applies to `tier`, so check_admission has nothing to count;
        raises ShuttingDown while draining. Lets the hot path skip a coroutine."""
        if not self.accepting:
            raise ShuttingDown()
        return tier in self._uncapped

    def check_rate(self, caller: Caller, client: str) -> None:
        """Count one submission against the caller's rate limit (its tier's `rate_limit`);
        RateLimited when over it. A key is limited by its name, an anonymous caller by
        `client` (the API passes its network address). Budgets are kept per process."""
        limit = self.settings.tiers[caller.tier].rate_limit
        if limit is None:
            return
        who = "client " + client if caller.anonymous else "key " + caller.name
        wait = self._rate_limiter.take(who, limit, self._clock.now())
        if wait > 0:
            raise RateLimited(
                f"{who} is limited to {limit.rate:g} orders per second (bursts of "
                f"{limit.burst}); retry in {wait:.2f} s", wait,
            )

    async def check_admission(self, tier: str) -> None:
        """Refuse before reading the body when the service drains or the tier is full."""
        if not self.accepting:
            raise ShuttingDown()
        cap = self.settings.tiers[tier].max_queued
        global_cap = self.settings.max_queued
        if cap is None and global_cap is None:
            return
        counts = dict(await self._queued_counts())
        for name, admitted in self._in_flight.items():
            counts[name] = counts.get(name, 0) + admitted
        if cap is not None and counts.get(tier, 0) >= cap:
            raise QueueFull(f"tier {tier!r} has {cap} orders queued", await self._retry_after())
        if global_cap is not None and sum(counts.values()) >= global_cap:
            raise QueueFull(f"{global_cap} orders are queued", await self._retry_after())

    async def _queued_counts(self) -> dict[str, int]:
        now = time.monotonic()
        if now - self._queued_snapshot_at > QUEUED_COUNTS_TTL:
            self._queued_snapshot = await self.store.queued_counts()
            self._queued_snapshot_at = now
        return self._queued_snapshot

    async def _retry_after(self) -> float:
        """Seconds until a slot is likely free, from the recent drain rate (1..MAX_RETRY_AFTER)
        (the statistics are the cached ones: a flood into a full queue reads them once)."""
        stats = await self.stats()
        per_second = stats.finished_last_minute / THROUGHPUT_WINDOW
        if per_second <= 0:
            return MAX_RETRY_AFTER
        return min(MAX_RETRY_AFTER, max(1.0, 1.0 / per_second))

    async def submit_order(
        self, *, payload: JSON = None, tier: str | None = None, duration: float = 0.0,
        idempotency_key: str | None = None, callback_url: str | None = None,
        kind: str = DEFAULT_KIND, delay: float | None = None, not_before: float | None = None,
    ) -> Order:
        """Submit an order from your own code, as the process itself: any configured tier
        (default: the anonymous callers' tier), no owner (whoever holds its id may read it),
        no rate limit; queue caps and draining apply. Returns the order once it is durably
        committed; with an `idempotency_key` already used, the order first submitted with it
        (IdempotencyKeyReused if that was a different request)."""
        trusted = Caller(name="", tier=self.tier_named(tier or self.anonymous.tier).name)
        spec = OrderSpec(payload, duration, idempotency_key=idempotency_key,
                         callback_url=callback_url, kind=kind, delay=delay,
                         not_before=not_before)
        order, _ = await self.submit(trusted, spec)
        return order

    async def submit(self, caller: Caller, spec: OrderSpec) -> tuple[Order, bool]:
        """Durably accept an order; (order, created). Returns only after its commit."""
        if not 0 <= spec.duration <= MAX_DURATION:
            raise InvalidOrder(f"duration must be between 0 and {MAX_DURATION:g} seconds")
        if spec.callback_url is not None:
            self.check_callback(spec.callback_url)
        self.check_kind(spec.kind)
        not_before = self.not_before_of(spec)
        tier_name = self.choose_tier(caller, spec.tier)
        capped = not self.admits_at_once(tier_name)
        if capped:
            await self.check_admission(tier_name)
        tier = self.settings.tiers[tier_name]
        customer = customer_of(caller, spec.customer)
        if tier.max_queued_per_customer is not None and tier.fairness == "customers":
            await self.check_customer_backlog(caller, tier, customer)
        new = NewOrder(
            id=new_order_id(),
            tier=tier.name,
            priority=tier.priority,
            payload=spec.payload,
            duration=spec.duration,
            owner=caller.name,
            idempotency_key=spec.idempotency_key,
            max_wait=tier.max_wait,
            fingerprint=None if spec.idempotency_key is None else fingerprint_of(
                spec, tier.name, customer),
            customer=customer,
            weight=caller.weight,
            fifo=tier.fairness == "fifo",
            callback_url=spec.callback_url,
            kind=spec.kind,
            not_before=not_before,
        )
        if not capped:
            order, created = await self.store.submit(new)
            if created:
                self._stats.invalidate()
            return check_replay(new, order, created)
        # Admitted but not yet committed: counted against the cap (check_admission adds these
        # to the snapshot), so concurrent submissions cannot all pass the same check. No await
        # since the check, so none slipped in between.
        self._in_flight[tier_name] = self._in_flight.get(tier_name, 0) + 1
        try:
            order, created = await self.store.submit(new)
        finally:
            self._in_flight[tier_name] -= 1
        if created:
            self._queued_snapshot[tier_name] = self._queued_snapshot.get(tier_name, 0) + 1
            self._stats.invalidate()
        return check_replay(new, order, created)

    def check_kind(self, kind: str) -> None:
        """InvalidOrder (422) for a kind that is not a valid name, or that this process does
        not serve, naming the kinds it does."""
        if not is_kind_name(kind):
            raise InvalidOrder(
                f"kind {kind[:80]!r} is not a valid kind: 1 to 64 of a-z 0-9 _ . - (starting "
                "with a letter or digit)")
        if self.kinds is not None and kind not in self.kinds:
            raise InvalidOrder(
                f"kind {kind!r} is not served here; known kinds: {', '.join(self.kinds)}")

    def not_before_of(self, spec: OrderSpec) -> float | None:
        """When the order may run at the earliest (None: at once), from `delay` or
        `not_before`, at most MAX_DELAY ahead; in whole microseconds, as the stores keep it."""
        if spec.delay is not None and spec.not_before is not None:
            raise InvalidOrder("give delay or not_before, not both")
        now = self._clock.now()
        if spec.delay is not None:
            if not 0 <= spec.delay <= MAX_DELAY:
                raise InvalidOrder(f"delay must be between 0 and {MAX_DELAY:g} seconds (30 days)")
            at = now + spec.delay
        elif spec.not_before is not None:
            if not spec.not_before - now <= MAX_DELAY:
                raise InvalidOrder("not_before must be at most 30 days ahead")
            at = spec.not_before
        else:
            return None
        return round(at * 1_000_000) / 1_000_000

    def check_callback(self, url: str) -> None:
        """CallbackNotAllowed unless callbacks are on and `url` matches the allow list."""
        callbacks = self.settings.callbacks
        if callbacks is None:
            raise CallbackNotAllowed(
                "callbacks are off: skipline.toml has no [callbacks] table with a secret")
        if len(url) > MAX_CALLBACK_URL or not callbacks.allows(url):
            raise CallbackNotAllowed(
                f"callback_url {url[:200]!r} matches none of the allowed prefixes: "
                + ", ".join(callbacks.allow or ("(none)",)))

    async def check_customer_backlog(self, caller: Caller, tier: Tier, customer: str) -> None:
        """429 when the caller's group already has its tier's max_queued_per_customer orders
        queued, counted from its fair-share position (one small read, see group_backlog)."""
        cap = tier.max_queued_per_customer
        if cap is None:
            return
        virtual_time, finish = await self.store.fair_position(
            tier.priority, (tier.name, caller.name, customer),
        )
        if group_backlog(virtual_time, finish, caller.weight) >= cap:
            who = "anonymous callers" if caller.anonymous else f"key {caller.name!r}"
            if customer:
                who += f", customer {customer!r},"
            raise CustomerQueueFull(
                f"{who} already has {cap} orders queued in tier {tier.name!r} "
                f"(max_queued_per_customer)", await self._retry_after(),
            )

    async def get(self, caller: Caller, order_id: str) -> Order:
        order = await self.store.get(order_id) if is_order_id(order_id) else None
        if order is None or not self._may_see(caller, order):
            raise OrderNotFound(f"no order {order_id[:80]!r}")
        return order

    async def wait(self, caller: Caller, order_id: str, seconds: float) -> Order:
        """The order once it is final, or as it is after `seconds` (0 < seconds <= MAX_WAIT):
        the store wakes this request when the order finishes, nothing polls."""
        if not 0 < seconds <= MAX_WAIT:
            raise InvalidOrder(f"wait must be more than 0 and at most {MAX_WAIT:g} seconds")
        order = await self.get(caller, order_id)
        if order.status.is_final:
            return order
        del order  # not held while waiting (bench/wait_many.py: memory per waiter)
        found = await self.store.wait_final(order_id, seconds)
        if found is None:
            raise OrderNotFound(f"no order {order_id!r}")
        return found

    async def cancel(self, caller: Caller, order_id: str) -> Order:
        await self.get(caller, order_id)
        cancelled = await self.store.cancel(order_id)
        self._stats.invalidate()
        return cancelled

    async def requeue(self, caller: Caller, order_id: str) -> Order:
        """Queue a failed or cancelled order again with a fresh attempts budget (whoever may
        see it: its owner, or an admin; others get OrderNotFound)."""
        await self.get(caller, order_id)
        return await self.store.requeue(order_id)

    async def deliveries(self, orders: list[Order]) -> dict[str, Delivery]:
        """The callback deliveries of those `orders` that have a callback (no query if none)."""
        with_callback = [order.id for order in orders if order.callback_url is not None]
        return await self.store.deliveries(with_callback) if with_callback else {}

    async def list_orders(
        self, caller: Caller, status: Status | None = None, tier: str | None = None,
        limit: int = 50, before_seq: int | None = None, customer: str | None = None,
        kind: str | None = None,
    ) -> list[Order]:
        """The caller's own orders (every order for an admin), newest first; `customer`
        keeps only that customer's, `kind` only that kind's."""
        self.check_may_list(caller)
        owner = None if caller.admin else caller.name
        query = OrderQuery(owner, status, tier, limit, before_seq, customer, kind)
        return await self.store.list_orders(query)

    @staticmethod
    def check_may_list(caller: Caller) -> None:
        """Listing needs a key: NotAuthenticated for an anonymous caller (checked before the
        query is, so a caller without a key learns nothing from a 422)."""
        if caller.anonymous and not caller.admin:
            raise NotAuthenticated("listing orders needs an API key")

    async def stats(self) -> StoreStats:
        """The store's statistics, at most `settings.stats_ttl` seconds old (fresh after a
        submission or a cancellation through this service)."""
        return await self._stats.get()

    async def ping(self) -> None:
        """Returns when the store answers; raises StoreUnavailable when it does not."""
        await self.store.ping()

    @staticmethod
    def _may_see(caller: Caller, order: Order) -> bool:
        """Admins see all; a key its own; an anonymous order whoever holds its id."""
        return caller.admin or order.owner == "" or order.owner == caller.name


def customer_of(caller: Caller, customer: str | None) -> str:
    """The customer an order is submitted for: only keys made with --customers may name one,
    so nobody multiplies their share by inventing customers."""
    if customer is None:
        return ""
    if not caller.customers:
        who = "anonymous callers" if caller.anonymous else f"key {caller.name!r}"
        raise CustomerNotAllowed(f"{who} may not name a customer (keys add --customers)")
    if not is_customer_id(customer):
        raise InvalidOrder(f"customer must be 1 to {MAX_CUSTOMER} printable ASCII characters")
    return customer


def fingerprint_of(spec: OrderSpec, tier: str, customer: str) -> str:
    """The request fingerprint of a submission with an idempotency key (invariant 8)."""
    schedule: tuple[str, float] | None = None
    if spec.delay is not None:
        schedule = ("delay", spec.delay)
    elif spec.not_before is not None:
        schedule = ("not_before", spec.not_before)
    return request_fingerprint(
        tier, spec.payload, spec.duration, customer, spec.kind, schedule)


def check_replay(new: NewOrder, order: Order, created: bool) -> tuple[Order, bool]:
    """(order, created) as the store answered, unless the store returned an earlier order
    whose request was a different one: then the key is being reused (an order stored
    before fingerprints were kept, without one, is believed)."""
    if not created and order.fingerprint not in (None, new.fingerprint):
        # Not a word about the first order: anonymous callers share keys, and its id would
        # let whoever guessed the key read it.
        raise IdempotencyKeyReused(
            f"Idempotency-Key {new.idempotency_key!r} was already used for a different "
            "request; use a new key for a new order"
        )
    return order, created


def uncapped_tiers(settings: Settings) -> frozenset[str]:
    """The tiers no queue cap applies to (none when there is a global cap)."""
    if settings.max_queued is not None:
        return frozenset()
    return frozenset(name for name, tier in settings.tiers.items() if tier.max_queued is None)
