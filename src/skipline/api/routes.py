"""Thin route handlers: parse the request, call the OrderService, serialise the answer.
Every failure is raised as an error and rendered by the error middleware."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from skipline.api import problems
from skipline.api.appkeys import CALLER, METRICS, SERVICE
from skipline.api.body import (
    body_if_arrived,
    expect_handler,
    read_limited,
    require_json,
    require_size,
)
from skipline.api.clients import client_address
from skipline.api.errors import InvalidRequest
from skipline.api.query import encode_cursor, parse_list_query
from skipline.api.schemas import (
    ENCODER,
    Health,
    OrderPage,
    decode_order_request,
    order_out,
    stats_out,
)
from skipline.crashpoints import crash_point
from skipline.domain.errors import OutcomeUnknown, ShuttingDown, StoreUnavailable
from skipline.domain.models import MAX_WAIT, Order
from skipline.service import OrderSpec

READY_TIMEOUT = 2.0
"""Seconds the store has to answer a readiness ping."""
MAX_IDEMPOTENCY_KEY = 255
IDEMPOTENCY_KEY = "Idempotency-Key"


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_post("/orders", submit_order, name="orders", expect_handler=expect_handler)
    router.add_get("/orders", list_orders, name="orders")
    router.add_get("/orders/{id}", get_order, name="order")
    router.add_delete("/orders/{id}", cancel_order, name="order")
    router.add_post("/orders/{id}/retry", retry_order, name="order-retry")
    router.add_get("/stats", stats, name="stats")
    router.add_get("/healthz", healthz, name="healthz")
    router.add_get("/readyz", readyz, name="readyz")
    router.add_get("/metrics", serve_metrics, name="metrics")


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None,
                  ) -> web.Response:
    return web.Response(
        body=ENCODER.encode(value), status=status, content_type="application/json",
        headers=headers,
    )


def order_location(request: web.Request, order_id: str) -> str:
    """The order's URL, prefix included when the app is mounted inside another. Order ids are
    hex digits and a dash, which need no quoting, so the route's template is filled in
    directly (url_for builds and quotes a URL object, a noticeable cost on every POST)."""
    return request.app.router["order"].canonical.replace("{id}", order_id)


async def submit_order(request: web.Request) -> web.Response:
    """Checks run cheapest first; the body is read only once everything else has passed."""
    service = request.app[SERVICE]
    caller = request[CALLER]
    await service.admit(caller, client_address(request))
    require_json(request)
    max_body = service.settings.max_body
    require_size(request, max_body)
    idempotency_key = idempotency_key_of(request)
    raw = body_if_arrived(request, max_body)
    if raw is None:
        raw = await read_limited(request, max_body)
    body = decode_order_request(raw)
    spec = OrderSpec(
        payload=body.payload, duration=body.duration, tier=body.user_type,
        idempotency_key=idempotency_key, customer=body.customer,
        callback_url=body.callback_url, kind=body.kind, delay=body.delay,
        not_before=None if body.not_before is None else body.not_before.timestamp(),
    )
    try:
        order, created = await service.submit(caller, spec)
    except OutcomeUnknown as unknown:
        # A 503 like any outage, which also says where to ask later: only here is the URL known.
        return problems.from_error(unknown, order_location(request, unknown.order_id))
    crash_point("after_commit")
    if created:
        request.app[METRICS].order_accepted(order.tier, order.kind)
    location = {"Location": order_location(request, order.id)}
    return json_response(order_out(order), 202 if created else 200, location)


def idempotency_key_of(request: web.Request) -> str | None:
    if IDEMPOTENCY_KEY not in request.headers:
        return None
    values = request.headers.getall(IDEMPOTENCY_KEY)
    key = values[0]
    if len(values) > 1 or not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not all(
        " " <= char <= "~" for char in key
    ):
        raise InvalidRequest(
            f"Idempotency-Key must be one header of 1 to {MAX_IDEMPOTENCY_KEY} printable "
            "ASCII characters"
        )
    return key


async def get_order(request: web.Request) -> web.Response:
    """`?wait=S` holds the request until the order is final or S seconds have passed."""
    service, caller, order_id = request.app[SERVICE], request[CALLER], request.match_info["id"]
    seconds = wait_seconds(request)
    if seconds is None:
        order = await service.get(caller, order_id)
    else:
        order = await service.wait(caller, order_id, seconds)
    return await order_response(request, order)


async def order_response(
    request: web.Request, order: Order, status: int = 200, headers: dict[str, str] | None = None,
) -> web.Response:
    """The order with its callback's delivery (looked up only for an order with a callback)."""
    delivery = None
    if order.callback_url is not None:
        delivery = (await request.app[SERVICE].deliveries([order])).get(order.id)
    return json_response(order_out(order, delivery), status, headers)


def wait_seconds(request: web.Request) -> float | None:
    """The `wait` query parameter: None when absent; 0 < S <= MAX_WAIT, else 422."""
    unknown = sorted(set(request.query) - {"wait"})
    if unknown:
        raise InvalidRequest(f"unknown query parameter {unknown[0]!r}: only 'wait' is accepted")
    values = request.query.getall("wait", [])
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest("wait is given more than once: give it once")
    text = values[0]
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= MAX_WAIT:
        raise InvalidRequest(f"wait must be a number of seconds above 0 and at most {MAX_WAIT:g}")
    return seconds


async def cancel_order(request: web.Request) -> web.Response:
    order = await request.app[SERVICE].cancel(request[CALLER], request.match_info["id"])
    return await order_response(request, order)


async def retry_order(request: web.Request) -> web.Response:
    """Queue a failed or cancelled order again: 202 and the queued order."""
    order = await request.app[SERVICE].requeue(request[CALLER], request.match_info["id"])
    location = {"Location": order_location(request, order.id)}
    return await order_response(request, order, 202, location)


async def list_orders(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    service.check_may_list(request[CALLER])
    query = parse_list_query(request.query, service.settings.tiers)
    found = await service.list_orders(
        request[CALLER], query.status, query.tier, query.limit + 1, query.before_seq,
        query.customer, query.kind,
    )
    page = found[: query.limit]
    more = len(found) > query.limit
    cursor = encode_cursor(page[-1].seq) if more else None
    deliveries = await service.deliveries(page)
    return json_response(OrderPage(
        [order_out(order, deliveries.get(order.id)) for order in page], cursor))


async def stats(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    snapshot = await service.stats()
    return json_response(stats_out(snapshot, service.settings.tiers, service.accepting))


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and its event loop answers; nothing else is checked."""
    return json_response(Health("ok"))


async def readyz(request: web.Request) -> web.Response:
    """Ready means: the store answers a ping in time and the service accepts orders."""
    service = request.app[SERVICE]
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await service.ping()
    except StoreUnavailable:
        raise
    except Exception as error:  # any failure to reach the store means "not ready"
        raise StoreUnavailable(f"the store did not answer a ping: {type(error).__name__}") from None
    if not service.accepting:
        raise ShuttingDown()
    return json_response(Health("ready"))


async def serve_metrics(request: web.Request) -> web.Response:
    """Prometheus text format; the queue gauges are refreshed from the store on each scrape."""
    service = request.app[SERVICE]
    app_metrics = request.app[METRICS]
    app_metrics.record_store(await service.stats(), service.accepting)
    return web.Response(
        body=app_metrics.render(), headers={"Content-Type": app_metrics.content_type},
    )
