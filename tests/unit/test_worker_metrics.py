"""The worker's figures in a Metrics registry, as Prometheus reads them: handler run times as a
cumulative histogram per kind, failures, retries and dead letters as counters per kind."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from skipline.metrics import HANDLER_BUCKETS, Metrics


def families(metrics: Metrics) -> dict[str, Any]:
    text = metrics.render().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family: Any, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    return [(s.labels, s.value) for s in family.samples if s.name == name
            and all(s.labels.get(k) == v for k, v in labels.items())]


def test_handler_run_times_are_a_cumulative_histogram_per_kind() -> None:
    metrics = Metrics()
    for seconds in (0.002, 0.002, 0.3, 4000.0):
        metrics.handler_ran("default", seconds, failed=False)
    metrics.handler_ran("mail", 0.02, failed=True)

    histogram = families(metrics)["skipline_handler_duration_seconds"]
    buckets = {labels["le"]: value for labels, value in samples(
        histogram, "skipline_handler_duration_seconds_bucket", kind="default")}
    assert len(buckets) == len(HANDLER_BUCKETS) + 1
    assert (buckets["0.001"], buckets["0.005"], buckets["0.25"], buckets["0.5"]) == (0, 2, 2, 3)
    assert (buckets["3600.0"], buckets["+Inf"]) == (3, 4)
    [(_, count)] = samples(histogram, "skipline_handler_duration_seconds_count", kind="default")
    [(_, total)] = samples(histogram, "skipline_handler_duration_seconds_sum", kind="default")
    assert count == 4 and abs(total - 4000.304) < 1e-9
    [(_, mail)] = samples(histogram, "skipline_handler_duration_seconds_count", kind="mail")
    assert mail == 1


def test_failures_retries_and_dead_letters_are_counted_per_kind() -> None:
    metrics = Metrics()
    metrics.handler_ran("default", 0.1, failed=True)
    metrics.handler_ran("default", 0.1, failed=False)
    metrics.order_retried("default")
    metrics.order_retried("default")
    metrics.order_dead("pdf")

    found = families(metrics)
    expected = {
        "skipline_handler_failures": {"default": 1},
        "skipline_order_retries": {"default": 2, "pdf": 0},
        "skipline_dead_letters": {"default": 0, "pdf": 1},
    }
    for name, by_kind in expected.items():
        values = {labels["kind"]: value for labels, value in samples(found[name], name + "_total")}
        assert {kind: values[kind] for kind in by_kind} == by_kind, name


def test_a_process_that_ran_nothing_exports_the_names_without_samples() -> None:
    found = families(Metrics())
    for name in ("skipline_handler_duration_seconds", "skipline_handler_failures",
                 "skipline_order_retries", "skipline_dead_letters"):
        assert found[name].samples == [], name
