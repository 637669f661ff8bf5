"""Prometheus metrics. One registry per application (never the global one), so several apps
in one process, or one per test, never collide."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from skipline.domain.models import Status, StoreStats
from skipline.domain.scheduling import percentile

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The metrics of one skipline application and the registry that holds them."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.orders_accepted = Counter(
            "skipline_orders_accepted", "Orders accepted (first submissions only), by tier.",
            ["tier"], registry=self.registry,
        )
        self.http_requests = Counter(
            "skipline_http_requests", "HTTP requests served, by route, method and status.",
            ["route", "method", "status"], registry=self.registry,
        )
        self.http_latency = Histogram(
            "skipline_http_request_duration_seconds", "Time to serve an HTTP request.",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self._add_store_gauges()

    def _add_store_gauges(self) -> None:
        self.orders = Gauge(
            "skipline_orders", "Orders by tier and status, read from the store at scrape time.",
            ["tier", "status"], registry=self.registry,
        )
        self.wait = Gauge(
            "skipline_wait_seconds", "Submit-to-start wait of recently started orders.",
            ["tier", "quantile"], registry=self.registry,
        )
        self.throughput = Gauge(
            "skipline_orders_finished_per_second", "Orders finished per second, last minute.",
            registry=self.registry,
        )
        self.accepting = Gauge(
            "skipline_accepting", "1 while the service accepts new orders, else 0.",
            registry=self.registry,
        )

    def order_accepted(self, tier: str) -> None:
        self.orders_accepted.labels(tier=tier).inc()

    def request_served(self, route: str, method: str, status: int, seconds: float) -> None:
        self.http_requests.labels(route=route, method=method, status=str(status)).inc()
        self.http_latency.labels(route=route, method=method).observe(seconds)

    def record_store(self, stats: StoreStats, accepting: bool) -> None:
        """Refresh the queue gauges from a fresh store snapshot (called on scrape)."""
        for tier, counts in stats.counts.items():
            for status in Status:
                count = getattr(counts, status.value)
                self.orders.labels(tier=tier, status=status.value).set(count)
        for tier, waits in stats.recent_waits.items():
            for name, fraction in (("0.5", 0.5), ("0.99", 0.99)):
                value = percentile(waits, fraction)
                if value is not None:
                    self.wait.labels(tier=tier, quantile=name).set(value)
        self.throughput.set(stats.finished_last_minute / 60.0)
        self.accepting.set(1 if accepting else 0)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric in this registry."""
        return generate_latest(self.registry)
