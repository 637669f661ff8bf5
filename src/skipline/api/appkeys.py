"""Typed keys for what the application and each request share."""

from __future__ import annotations

from aiohttp import web

from skipline.domain.models import Caller
from skipline.history import History
from skipline.metrics import Metrics
from skipline.service import OrderService

SERVICE = web.AppKey("skipline.service", OrderService)
METRICS = web.AppKey("skipline.metrics", Metrics)
HISTORY = web.AppKey("skipline.history", History)
CALLER = web.RequestKey("skipline.caller", Caller)
