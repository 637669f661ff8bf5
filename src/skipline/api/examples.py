"""One request and one answer per operation, for the docs page (a curl command and the JSON or
text it gets back) and for the OpenAPI document (the answer as the success response's
`example`). `{base}` in a command stands for the server's URL, mount prefix included."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ORDER_ID = "01a222cb222d-e59e83373050c902e7d086a5e901f994"
KEY_HEADER = ' -H "Authorization: Bearer $KEY"'


def _order(status: str, **changes: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "id": ORDER_ID, "tier": "vip", "priority": 0, "status": status, "attempts": 0,
        "created_at": "2026-12-02T07:05:41.120000Z", "started_at": None,
        "finished_at": None, "payload": {"item": "book"}, "result": None, "error": None,
        "customer": None, "kind": "ship", "not_before": None, "next_attempt_at": None,
        "callback": None, "history": [],
    }
    order.update(changes)
    return order


FINISHED = _order(
    "succeeded", attempts=1, started_at="2026-12-02T07:05:41.131000Z",
    finished_at="2026-12-02T07:05:42.633000Z", result={"slept": 1.5},
)


@dataclass(frozen=True)
class Example:
    command: str
    """A curl command line; `{base}` is replaced by the server's URL."""
    status: int
    answer: Any
    """The decoded JSON answer, or text: of a non-JSON answer, or of one too long to show."""

    def curl(self, base: str) -> str:
        """The command for `base`, one option a line when it is long."""
        command = self.command.replace("{base}", base)
        if len(command) <= 90:
            return command
        return command.replace(" -H ", " \\\n     -H ").replace(" -d ", " \\\n     -d ")


EXAMPLES: dict[tuple[str, str], Example] = {
    ("post", "/orders"): Example(
        "curl -si -X POST {base}/orders" + KEY_HEADER + " -H 'Content-Type: application/json' "
        "-H 'Idempotency-Key: 9d7c1f0e-1b1e-4c83-9b59-1f4a4b7f3c11' "
        "-d '{\"payload\": {\"item\": \"book\"}, \"kind\": \"ship\", \"user_type\": \"vip\", "
        "\"not_before\": \"2026-12-02T09:00:00+01:00\"}'",
        202, _order("queued", not_before="2026-12-02T08:00:00Z"),
    ),
    ("get", "/orders"): Example(
        "curl -s '{base}/orders?status=succeeded&limit=1'" + KEY_HEADER,
        200, {"orders": [FINISHED], "next_cursor": "1041"},
    ),
    ("get", "/orders/{id}"): Example(
        f"curl -s {{base}}/orders/{ORDER_ID}{KEY_HEADER}", 200, FINISHED,
    ),
    ("delete", "/orders/{id}"): Example(
        f"curl -s -X DELETE {{base}}/orders/{ORDER_ID}{KEY_HEADER}", 200,
        _order("cancelled", finished_at="2026-12-02T07:05:41.500000Z"),
    ),
    ("post", "/orders/{id}/retry"): Example(
        f"curl -s -X POST {{base}}/orders/{ORDER_ID}/retry{KEY_HEADER}", 202,
        _order("queued", history=[{"status": "cancelled", "error": None, "attempts": 0,
                                   "finished_at": "2026-12-02T07:05:41.500000Z"}]),
    ),
    ("get", "/stats"): Example(
        "curl -s {base}/stats", 200,
        {"tiers": {"vip": {"priority": 0, "queued": 2, "running": 1, "succeeded": 40,
                           "failed": 0, "cancelled": 1, "wait_p50": 0.004, "wait_p99": 0.02},
                   "regular": {"priority": 1, "queued": 120, "running": 2, "succeeded": 900,
                               "failed": 3, "cancelled": 0, "wait_p50": 1.8,
                               "wait_p99": 9.5}},
         "throughput_per_second": 12.5, "accepting": True,
         "kinds": {"ship": {"queued": 100, "running": 2, "succeeded": 800, "failed": 3,
                            "cancelled": 1, "wait_p50": 1.2, "wait_p99": 8.0},
                   "receipt": {"queued": 22, "running": 1, "succeeded": 140, "failed": 0,
                               "cancelled": 0, "wait_p50": 0.5, "wait_p99": 3.1}}},
    ),
    ("get", "/healthz"): Example("curl -s {base}/healthz", 200, {"status": "ok"}),
    ("get", "/readyz"): Example("curl -s {base}/readyz", 200, {"status": "ready"}),
    ("get", "/metrics"): Example(
        "curl -s {base}/metrics", 200,
        "# TYPE skipline_orders_accepted_total counter\n"
        "skipline_orders_accepted_total{tier=\"vip\"} 41.0\n…",
    ),
    ("get", "/openapi.json"): Example(
        "curl -s {base}/openapi.json", 200,
        '{"openapi": "3.1.0", "info": {"title": "skipline", …}, "paths": {…}, '
        '"components": {…}}',
    ),
    ("get", "/docs"): Example("curl -s {base}/docs", 200, "<!doctype html>…"),
    ("get", "/"): Example("curl -s {base}/", 200, "<!doctype html>…"),
}
"""Every operation of the document has one (a test checks it)."""


def add_response_examples(paths: dict[str, Any]) -> None:
    """Put each example's JSON answer into the document as its response's `example`."""
    for (method, path), example in EXAMPLES.items():
        operation = paths.get(path, {}).get(method)
        if operation is None or not isinstance(example.answer, dict):
            continue
        response = operation["responses"].get(str(example.status), {})
        content = response.get("content", {}).get("application/json")
        if content is not None:
            content["example"] = example.answer
