"""The dashboard's summary beyond /stats: the queue now (`GET /stats/queues`) and its last
hour (`GET /stats/history`), as thin handlers and their serialisers. Both are as public as
/stats: open unless `dashboard = "admin"`; customers only ever reach an admin key."""

from __future__ import annotations

import math
from collections.abc import Mapping

from aiohttp import web

from skipline.api.appkeys import CALLER, HISTORY, SERVICE
from skipline.api.errors import InvalidRequest
from skipline.api.schemas import (
    ENCODER,
    CustomerQueue,
    HistoryOut,
    HistoryPoint,
    QueuesOut,
    TierPoint,
    TierQueue,
)
from skipline.domain.models import GroupHealth, Tier
from skipline.domain.queueview import QueueView, TierView
from skipline.history import Sample

HISTORY_PARAMETERS = frozenset({"after"})


def add_summary_routes(app: web.Application) -> None:
    app.router.add_get("/stats/queues", queues, name="stats-queues")
    app.router.add_get("/stats/history", history, name="stats-history")


async def queues(request: web.Request) -> web.Response:
    service, caller = request.app[SERVICE], request[CALLER]
    service.check_may_read_summary(caller)
    if request.query:
        raise InvalidRequest("/stats/queues takes no query parameters")
    view = await service.queue_view()
    return json_response(queues_out(view, service.settings.tiers, caller.admin))


async def history(request: web.Request) -> web.Response:
    """`?after=T` (seconds since the epoch): only the samples taken after T."""
    request.app[SERVICE].check_may_read_summary(request[CALLER])
    after = after_of(request)
    kept = request.app[HISTORY]
    samples = [history_point(sample) for sample in kept.after(after)]
    return json_response(HistoryOut(kept.interval, samples))


def after_of(request: web.Request) -> float | None:
    unknown = sorted(set(request.query) - HISTORY_PARAMETERS)
    if unknown:
        raise InvalidRequest(f"unknown query parameter {unknown[0]!r}: only 'after' is accepted")
    values = request.query.getall("after", [])
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest("after is given more than once: give it once")
    try:
        after = float(values[0])
    except ValueError:
        after = math.nan
    if not math.isfinite(after) or after < 0:
        raise InvalidRequest("after must be a time in seconds since the epoch (a number >= 0)")
    return after


def json_response(value: object) -> web.Response:
    return web.Response(body=ENCODER.encode(value), content_type="application/json")


def seconds(value: float | None) -> float | None:
    """Milliseconds are plenty for a person, and keep the history small."""
    return None if value is None else round(value, 3)


def tier_point(view: TierView) -> TierPoint:
    return TierPoint(
        queued=view.queued, running=view.running, oldest_queued_age=seconds(view.oldest_age),
        overdue=view.overdue, wait_p50=seconds(view.wait_p50), wait_p99=seconds(view.wait_p99),
    )


def queues_out(view: QueueView, tiers: Mapping[str, Tier], admin: bool) -> QueuesOut:
    """Every configured tier (best first), then any other tier the store holds orders of."""
    names = sorted(tiers, key=lambda name: (tiers[name].priority, name))
    names += sorted(set(view.tiers) - set(tiers))
    idle = TierView(0, 0, None, 0, None, None)
    return QueuesOut(
        tiers={name: tier_queue(view.tiers.get(name, idle), tiers.get(name)) for name in names},
        kinds={name: tier_point(kind) for name, kind in view.kinds.items()},
        customers=[customer_queue(group) for group in view.groups] if admin else None,
        succeeded_per_second=round(view.succeeded_per_second, 3),
        failed_per_second=round(view.failed_per_second, 3),
        admin=admin,
    )


def tier_queue(view: TierView, tier: Tier | None) -> TierQueue:
    point = tier_point(view)
    return TierQueue(
        point.queued, point.running, point.oldest_queued_age, point.overdue, point.wait_p50,
        point.wait_p99, priority=None if tier is None else tier.priority,
        max_wait=None if tier is None else tier.max_wait,
    )


def customer_queue(group: GroupHealth) -> CustomerQueue:
    return CustomerQueue(group.tier, group.owner, group.customer, group.ready, group.running,
                         seconds(group.oldest_age))


def history_point(sample: Sample) -> HistoryPoint:
    view = sample.view
    return HistoryPoint(
        at=sample.at,
        tiers={name: tier_point(tier) for name, tier in view.tiers.items()},
        succeeded_per_second=round(view.succeeded_per_second, 3),
        failed_per_second=round(view.failed_per_second, 3),
    )
