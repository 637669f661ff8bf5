"""The one HTTP endpoint of a process that serves no API (`skipline worker --metrics-port`):
`GET /metrics`, the same handler and the same metric names as the API's /metrics, so several
processes are scraped alike. Anything else is a 404 problem. Opens and starts nothing."""

from __future__ import annotations

from aiohttp import web

from skipline.api.appkeys import METRICS, SERVICE
from skipline.api.middleware import skipline_middleware
from skipline.api.routes import serve_metrics
from skipline.metrics import Metrics
from skipline.service import OrderService


def create_metrics_app(service: OrderService, metrics: Metrics) -> web.Application:
    """`metrics` is the process's one registry, which its worker pool writes to."""
    app = web.Application(middlewares=[skipline_middleware])
    app[SERVICE] = service
    app[METRICS] = metrics
    app.router.add_get("/metrics", serve_metrics, name="metrics")
    return app
