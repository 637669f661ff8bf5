"""The wire format: msgspec Structs for what comes in and goes out, the strict decoding of an
order request, and the conversion of domain objects into response bodies."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from skipline.api.errors import MalformedRequest
from skipline.domain.errors import InvalidOrder
from skipline.domain.ids import CUSTOMER_PATTERN
from skipline.domain.models import (
    DEFAULT_KIND,
    KIND_PATTERN,
    MAX_DELAY,
    MAX_DURATION,
    Delivery,
    Order,
    Status,
    StoreStats,
    Tier,
)
from skipline.domain.reporting import THROUGHPUT_WINDOW
from skipline.domain.scheduling import percentile

MAX_PAYLOAD_DEPTH = 64
"""Nesting limit for payloads, so no store ever recurses too deep serialising one."""


class OrderRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The body of `POST /orders`; every field is optional and no other field is accepted."""

    payload: Annotated[
        dict[str, Any] | None, msgspec.Meta(description="Any JSON object, kept as given.")
    ] = None
    duration: Annotated[
        float,
        msgspec.Meta(ge=0, le=MAX_DURATION, description="Seconds the `simulate` handler sleeps."),
    ] = 0.0
    user_type: Annotated[
        str | None,
        msgspec.Meta(description="A tier name; no better than the API key's tier (else 403)."),
    ] = None
    customer: Annotated[
        Annotated[str, msgspec.Meta(pattern=CUSTOMER_PATTERN)] | None,
        msgspec.Meta(
            description="Your own customer this order is for (1 to 128 printable "
            "ASCII characters): its own fair-share group inside the tier. Only keys created with "
            "`keys add --customers` may send it (else 403).",
        ),
    ] = None
    callback_url: Annotated[
        str, msgspec.Meta(max_length=2048, description=(
            "Where to POST the order's JSON once it is final, signed with the "
            "Skipline-Signature header; must match the server's [callbacks] allow list.")),
    ] | None = None
    kind: Annotated[
        str, msgspec.Meta(pattern=KIND_PATTERN, description=(
            "Which handler runs it (default `default`): a server whose workers have a "
            "handler registry refuses a kind it does not know (422 naming the known ones).")),
    ] = DEFAULT_KIND
    delay: Annotated[
        float, msgspec.Meta(ge=0, le=MAX_DELAY, description=(
            "Seconds from now before it may run (0 to 30 days). Not with `not_before`.")),
    ] | None = None
    not_before: Annotated[
        datetime, msgspec.Meta(description=(
            "When it may run at the earliest: RFC 3339 with an offset, at most 30 days ahead "
            "(a past time runs at once). Not with `delay`.")),
    ] | None = None


class CallbackOut(msgspec.Struct):
    """The delivery of an order's outcome to its callback_url: `waiting` (the order is not
    final yet), `pending` (being delivered, retried with backoff), `delivered` or `failed`
    (given up after 24 hours)."""

    url: str
    status: str
    attempts: int
    last_error: str | None


class PastRunOut(msgspec.Struct):
    """How an earlier run ended before the order was queued again (`retry`)."""

    status: Status
    error: str | None
    attempts: int
    finished_at: datetime | None


class OrderOut(msgspec.Struct):
    """An order as clients see it. Times are RFC 3339 UTC."""

    id: str
    tier: str
    priority: int
    status: Status
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    payload: Any
    result: Any
    error: str | None
    customer: Annotated[
        str | None, msgspec.Meta(description="The customer named on submission, if any."),
    ]
    kind: Annotated[str, msgspec.Meta(description="Which handler runs it.")] = DEFAULT_KIND
    not_before: Annotated[
        datetime | None,
        msgspec.Meta(description="When it was scheduled for; null when it was not."),
    ] = None
    next_attempt_at: Annotated[
        datetime | None,
        msgspec.Meta(description=(
            "When a retry waiting out its backoff runs again; null otherwise (a queued order "
            "with this set has failed before).")),
    ] = None
    callback: CallbackOut | None = None
    history: list[PastRunOut] = []


class OrderPage(msgspec.Struct):
    """One page of orders, newest first; pass `next_cursor` as `cursor` for the next page."""

    orders: list[OrderOut]
    next_cursor: str | None


class TierStats(msgspec.Struct):
    """Counts by status and submit-to-start waits (seconds) for one tier."""

    priority: int | None
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    wait_p50: float | None
    wait_p99: float | None


class KindStats(msgspec.Struct):
    """Counts by status and waits (seconds, from when each was due) for one kind."""

    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int
    wait_p50: float | None
    wait_p99: float | None


class StatsOut(msgspec.Struct):
    """Per-tier and per-kind counts and waits, and orders finished per second over the last
    minute."""

    tiers: dict[str, TierStats]
    throughput_per_second: float
    accepting: bool
    kinds: dict[str, KindStats] = {}


class Problem(msgspec.Struct):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str


class Health(msgspec.Struct):
    status: str


SCHEMA_TYPES: tuple[type[msgspec.Struct], ...] = (
    OrderRequest, CallbackOut, PastRunOut, OrderOut, OrderPage, TierStats, KindStats, StatsOut,
    Problem, Health,
)
_ORDER_REQUEST_DECODER = msgspec.json.Decoder(OrderRequest)


# --- decoding -------------------------------------------------------------------------------
class _NonFiniteNumber(ValueError):
    pass


def decode_order_request(body: bytes) -> OrderRequest:
    """Strictly decode an order: malformed JSON is MalformedRequest (400), anything that is JSON
    but not a valid order is InvalidOrder (422) with a message naming the field."""
    try:
        request = _ORDER_REQUEST_DECODER.decode(body)
    except msgspec.ValidationError as error:
        _raise_if_malformed(body)
        raise InvalidOrder(f"invalid order: {error}") from None
    except msgspec.DecodeError as error:
        _raise_if_non_finite(body)
        raise MalformedRequest(f"the body is not valid JSON: {error}") from None
    except UnicodeDecodeError as error:
        raise MalformedRequest(f"the body is not valid UTF-8 JSON: {error.reason} at byte "
                               f"{error.start}") from None
    except RecursionError:
        raise InvalidOrder(f"the payload nests deeper than {MAX_PAYLOAD_DEPTH} levels") from None
    if may_break_payload_rules(body):
        check_payload(request.payload)
    if request.not_before is not None and request.not_before.tzinfo is None:
        raise InvalidOrder("not_before must be an RFC 3339 time with an offset (Z or +hh:mm)")
    return request


def may_break_payload_rules(body: bytes) -> bool:
    """False when the raw body alone shows check_payload would pass, which spares walking the
    payload: a NUL can only arrive as the escape \\u0000, and nesting deeper than the limit
    needs more opening brackets than the limit."""
    return b"\\u0000" in body or body.count(b"{") + body.count(b"[") > MAX_PAYLOAD_DEPTH


def _raise_if_malformed(body: bytes) -> None:
    """msgspec checks types while it parses: tell broken JSON apart from a wrong shape."""
    try:
        msgspec.json.decode(body)
    except msgspec.ValidationError:
        return  # well-formed; a number is out of range, which the caller reports
    except msgspec.DecodeError as error:
        _raise_if_non_finite(body)
        raise MalformedRequest(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        return


def _raise_if_non_finite(body: bytes) -> None:
    """NaN and Infinity are not JSON, but some encoders emit them: name them as such (422)."""
    try:
        json.loads(body, parse_constant=_refuse_constant)
    except _NonFiniteNumber as error:
        raise InvalidOrder(f"non-finite number {error} is not allowed") from None
    except (ValueError, RecursionError):
        return


def _refuse_constant(name: str) -> Any:
    raise _NonFiniteNumber(name)


def check_payload(payload: dict[str, Any] | None) -> None:
    """Bounded nesting and no NUL characters (PostgreSQL's JSON cannot hold them)."""
    if payload is None:
        return
    pending: list[tuple[Any, int]] = [(payload, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_PAYLOAD_DEPTH:
            raise InvalidOrder(f"the payload nests deeper than {MAX_PAYLOAD_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key)
                pending.append((item, depth + 1))
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            _check_text(value)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise InvalidOrder("the payload must not contain NUL (\\u0000) characters")


# --- encoding -------------------------------------------------------------------------------
def timestamp(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def order_out(
    order: Order, delivery: Delivery | None = None, now: float | None = None,
) -> OrderOut:
    """`delivery`: its callback's delivery, if the order has a callback and is final; `now`
    tells a retry still waiting out its backoff (default: the time now)."""
    created = datetime.fromtimestamp(order.created_at, UTC)
    next_attempt = None
    if order.status is Status.QUEUED and order.attempts:
        next_attempt = order.next_attempt_at(time.time() if now is None else now)
    return OrderOut(
        id=order.id, tier=order.tier, priority=order.priority, status=order.status,
        attempts=order.attempts, created_at=created, started_at=timestamp(order.started_at),
        finished_at=timestamp(order.finished_at), payload=order.payload, result=order.result,
        error=order.error, customer=order.customer or None, kind=order.kind,
        not_before=timestamp(order.not_before), next_attempt_at=timestamp(next_attempt),
        callback=callback_out(order, delivery),
        history=[PastRunOut(run.status, run.error, run.attempts, timestamp(run.finished_at))
                 for run in order.history],
    )


def callback_out(order: Order, delivery: Delivery | None) -> CallbackOut | None:
    if order.callback_url is None:
        return None
    if delivery is None or not order.status.is_final:
        return CallbackOut(order.callback_url, "waiting", 0, None)
    return CallbackOut(delivery.url, delivery.status, delivery.attempts, delivery.last_error)


def stats_out(stats: StoreStats, tiers: dict[str, Tier], accepting: bool) -> StatsOut:
    """Every configured tier (best first), then any tier the store still holds orders of."""
    names = sorted(tiers, key=lambda name: (tiers[name].priority, name))
    names += sorted(set(stats.counts) - set(tiers))
    return StatsOut(
        tiers={name: _tier_stats(name, stats, tiers) for name in names},
        throughput_per_second=round(stats.finished_last_minute / THROUGHPUT_WINDOW, 3),
        accepting=accepting,
        kinds={name: _kind_stats(name, stats) for name in sorted(stats.kinds)},
    )


def _kind_stats(name: str, stats: StoreStats) -> KindStats:
    counts = stats.kinds[name]
    waits = stats.kind_waits.get(name, [])
    return KindStats(
        queued=counts.queued, running=counts.running, succeeded=counts.succeeded,
        failed=counts.failed, cancelled=counts.cancelled,
        wait_p50=percentile(waits, 0.50), wait_p99=percentile(waits, 0.99),
    )


def _tier_stats(name: str, stats: StoreStats, tiers: dict[str, Tier]) -> TierStats:
    counts = stats.counts.get(name)
    waits = stats.recent_waits.get(name, [])
    tier = tiers.get(name)
    return TierStats(
        priority=None if tier is None else tier.priority,
        queued=counts.queued if counts else 0,
        running=counts.running if counts else 0,
        succeeded=counts.succeeded if counts else 0,
        failed=counts.failed if counts else 0,
        cancelled=counts.cancelled if counts else 0,
        wait_p50=percentile(waits, 0.50),
        wait_p99=percentile(waits, 0.99),
    )


ENCODER = msgspec.json.Encoder()
