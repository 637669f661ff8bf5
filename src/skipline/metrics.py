"""Prometheus metrics. One registry per application (never the global one), so several apps
in one process, or one per test, never collide.

The per-request figures are plain integers kept on the event loop and turned into Prometheus
families only when /metrics is scraped: prometheus-client's `labels()` lookups and histogram
`observe()` take locks and build label tuples, which cost more than the rest of a request's
bookkeeping together."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from skipline.domain.models import DEFAULT_KIND, Status, StoreStats, TierCounts
from skipline.domain.reporting import THROUGHPUT_WINDOW
from skipline.domain.scheduling import percentile

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RouteFigures:
    """Requests served by one (route, method): counts per status and a latency histogram."""

    __slots__ = ("buckets", "seconds", "statuses")

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        """Per bucket, not cumulative; the last one is +Inf."""
        self.seconds = 0.0

    def observe(self, status: int, seconds: float) -> None:
        statuses = self.statuses
        statuses[status] = statuses.get(status, 0) + 1
        self.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.seconds += seconds


class Metrics:
    """The metrics of one skipline application and the registry that holds them."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.accepted: dict[str, int] = {}
        """Orders accepted (first submissions only), by tier."""
        self.accepted_kinds: dict[str, int] = {}
        """The same, by kind."""
        self.routes: dict[tuple[str, str], RouteFigures] = {}
        """Requests by (route template, method)."""
        self.pruned = 0
        """Finished orders deleted by this process's retention (maintenance.Pruner)."""
        self.registry.register(RequestCollector(self))
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
        self.kind_orders = Gauge(
            "skipline_kind_orders", "Orders by kind and status, read from the store at scrape "
            "time.", ["kind", "status"], registry=self.registry,
        )
        self.kind_wait = Gauge(
            "skipline_kind_wait_seconds", "Wait of recently started orders by kind, from when "
            "each was due.", ["kind", "quantile"], registry=self.registry,
        )
        self.throughput = Gauge(
            "skipline_orders_finished_per_second", "Orders finished per second, last minute.",
            registry=self.registry,
        )
        self.accepting = Gauge(
            "skipline_accepting", "1 while the service accepts new orders, else 0.",
            registry=self.registry,
        )
        self.callbacks = Counter(
            "skipline_callback_deliveries", "Callback delivery attempts of this process, by "
            "outcome: delivered (2xx), failed (to be retried) or given_up.",
            ["outcome"], registry=self.registry,
        )

    def callback_attempted(self, outcome: str) -> None:
        """One delivery attempt: `delivered`, `failed` (retried later) or `given_up`."""
        self.callbacks.labels(outcome).inc()

    def order_accepted(self, tier: str, kind: str = DEFAULT_KIND) -> None:
        accepted = self.accepted
        accepted[tier] = accepted.get(tier, 0) + 1
        kinds = self.accepted_kinds
        kinds[kind] = kinds.get(kind, 0) + 1

    def orders_pruned(self, count: int) -> None:
        self.pruned += count

    def route(self, route: str, method: str) -> RouteFigures:
        """The figures of one (route, method), created on first use."""
        key = (route, method)
        figures = self.routes.get(key)
        if figures is None:
            figures = self.routes[key] = RouteFigures()
        return figures

    def request_served(self, route: str, method: str, status: int, seconds: float) -> None:
        self.route(route, method).observe(status, seconds)

    def record_store(self, stats: StoreStats, accepting: bool) -> None:
        """Refresh the queue gauges from a fresh store snapshot (called on scrape)."""
        record_counts(self.orders, stats.counts)
        record_waits(self.wait, stats.recent_waits)
        record_counts(self.kind_orders, stats.kinds)
        record_waits(self.kind_wait, stats.kind_waits)
        self.throughput.set(stats.finished_last_minute / THROUGHPUT_WINDOW)
        self.accepting.set(1 if accepting else 0)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric in this registry."""
        return generate_latest(self.registry)


def record_counts(gauge: Gauge, counts: Mapping[str, TierCounts]) -> None:
    """Set `gauge` (labelled by tier or kind, then status) from `counts`."""
    for name, by_status in counts.items():
        for status in Status:
            gauge.labels(name, status.value).set(getattr(by_status, status.value))


def record_waits(gauge: Gauge, waits: Mapping[str, list[float]]) -> None:
    """Set `gauge` (labelled by tier or kind, then quantile) from recent waits."""
    for name, recent in waits.items():
        for quantile, fraction in (("0.5", 0.5), ("0.99", 0.99)):
            value = percentile(recent, fraction)
            if value is not None:
                gauge.labels(name, quantile).set(value)


class RequestCollector(Collector):
    """Turns the plain counters of a Metrics into Prometheus families at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield self._accepted()
        yield self._accepted_kinds()
        yield CounterMetricFamily(
            "skipline_orders_pruned",
            "Finished orders deleted by retention in this process.", value=self.metrics.pruned,
        )
        yield self._requests()
        yield self._latency()

    def _accepted(self) -> Metric:
        family = CounterMetricFamily(
            "skipline_orders_accepted", "Orders accepted (first submissions only), by tier.",
            labels=["tier"],
        )
        for tier, count in sorted(self.metrics.accepted.items()):
            family.add_metric([tier], count)
        return family

    def _accepted_kinds(self) -> Metric:
        family = CounterMetricFamily(
            "skipline_kind_orders_accepted",
            "Orders accepted (first submissions only), by kind.", labels=["kind"],
        )
        for kind, count in sorted(self.metrics.accepted_kinds.items()):
            family.add_metric([kind], count)
        return family

    def _requests(self) -> Metric:
        family = CounterMetricFamily(
            "skipline_http_requests", "HTTP requests served, by route, method and status.",
            labels=["route", "method", "status"],
        )
        for (route, method), figures in sorted(self.metrics.routes.items()):
            for status, count in sorted(figures.statuses.items()):
                family.add_metric([route, method, str(status)], count)
        return family

    def _latency(self) -> Metric:
        family = HistogramMetricFamily(
            "skipline_http_request_duration_seconds", "Time to serve an HTTP request.",
            labels=["route", "method"],
        )
        for (route, method), figures in sorted(self.metrics.routes.items()):
            family.add_metric([route, method], cumulative(figures.buckets), figures.seconds)
        return family


def cumulative(buckets: list[int]) -> list[tuple[str, float]]:
    """Per-bucket counts as Prometheus's cumulative (le, count) pairs, +Inf last."""
    bounds = [repr(bound) for bound in LATENCY_BUCKETS] + ["+Inf"]
    pairs = []
    running = 0
    for bound, count in zip(bounds, buckets, strict=True):
        running += count
        pairs.append((bound, float(running)))
    return pairs
