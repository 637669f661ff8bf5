"""The HTTP API. `create_app(service)` builds an aiohttp Application around an OrderService; it
opens nothing and starts nothing (the process runtime owns the store and the workers). It can
run on its own or be mounted into another application with `add_subapp`."""

from __future__ import annotations

from aiohttp import web

from skipline.api.appkeys import METRICS, SERVICE
from skipline.api.clients import PROXIES
from skipline.api.middleware import skipline_middleware
from skipline.api.openapi import add_docs_routes
from skipline.api.pages import add_dashboard_routes
from skipline.api.routes import add_routes
from skipline.domain.addresses import TrustedProxies
from skipline.metrics import Metrics
from skipline.service import OrderService

__all__ = ["METRICS", "SERVICE", "create_app"]


def create_app(service: OrderService, metrics: Metrics | None = None) -> web.Application:
    """The application; pass `metrics` to share one registry with the worker pool."""
    app = web.Application(middlewares=[skipline_middleware])
    app[SERVICE] = service
    app[METRICS] = metrics or Metrics()
    app[PROXIES] = TrustedProxies.of(service.settings.forwarded_allow_ips)
    add_routes(app)
    add_docs_routes(app, service.settings.tiers, service.kinds)
    add_dashboard_routes(app)
    return app
