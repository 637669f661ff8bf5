"""The two log formats: the same record as one JSON object or as text with key=value fields;
fields that do not apply are left out, and only the known field names are accepted."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from skipline.domain.models import Order, Status
from skipline.logs import JsonFormatter, TextFormatter, fields, order_fields


def record(message: str, *args: object, extra: dict[str, object] | None = None,
           level: int = logging.INFO) -> logging.LogRecord:
    made = logging.getLogger("skipline.test").makeRecord(
        "skipline.test", level, __file__, 1, message, args, None, extra=extra)
    made.created = 1_796_000_000.25
    return made


def test_a_json_line_carries_the_fields_that_apply() -> None:
    line = JsonFormatter().format(record(
        "order %s failed", "o-1",
        extra=fields("order.failed", order_id="o-1", tier="vip", attempt=3, error="boom",
                     customer=None),
        level=logging.WARNING,
    ))
    assert json.loads(line) == {
        "ts": "2026-11-30T00:53:20.250Z", "level": "warning", "event": "order.failed",
        "logger": "skipline.test", "message": "order o-1 failed", "order_id": "o-1",
        "tier": "vip", "attempt": 3, "error": "boom",
    }


def test_a_line_without_fields_is_still_one_json_object() -> None:
    try:
        raise RuntimeError("kaput")
    except RuntimeError:
        made = record("plain %d", 5)
        made.exc_info = sys.exc_info()
    parsed = json.loads(JsonFormatter().format(made))
    assert parsed["event"] == "log" and parsed["message"] == "plain 5"
    assert "RuntimeError: kaput" in parsed["exception"]
    assert "\n" not in JsonFormatter().format(record("two\nlines"))


def test_text_lines_carry_the_same_fields() -> None:
    line = TextFormatter().format(record(
        "order failed", extra=fields("order.failed", order_id="o-1", error="out of stock")))
    assert line == ('2026-11-30T00:53:20.250Z INFO skipline.test: order failed  '
                    '[order_id=o-1 error="out of stock"]')


def test_unknown_field_names_are_refused() -> None:
    with pytest.raises(ValueError, match="not a log field: colour"):
        fields("x", colour="red")


def test_order_fields_give_the_wait_and_leave_out_what_the_order_lacks() -> None:
    order = Order(id="o-1", seq=1, tier="vip", priority=0, status=Status.RUNNING, attempts=2,
                  rescues=0, payload=None, duration=0.0, owner="", created_at=100.0,
                  started_at=100.25)
    assert order_fields("order.succeeded", order, run_ms=12.5) == {
        "event": "order.succeeded", "order_id": "o-1", "tier": "vip", "attempt": 2,
        "wait_ms": 250.0, "kind": "default", "run_ms": 12.5,
    }


def test_a_scheduled_orders_wait_runs_from_its_not_before() -> None:
    order = Order(id="o-1", seq=1, tier="vip", priority=0, status=Status.RUNNING, attempts=1,
                  rescues=0, payload=None, duration=0.0, owner="", created_at=100.0,
                  started_at=160.5, kind="ship", not_before=160.0)
    assert order_fields("order.started", order)["wait_ms"] == 500.0
