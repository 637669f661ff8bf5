"""Log lines a person can read and a pipeline can parse. Every line is a `logging` record; the
facts a pipeline filters on travel as `extra=` fields (see `fields`), and one of two formatters
writes them: `text` (time, level, logger, message, then key=value) or `json` (one object per
line). A field that does not apply to a line is left out, never guessed."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from skipline.domain.models import Order

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

FIELDS = (
    "order_id", "tier", "kind", "customer", "attempt", "wait_ms", "run_ms", "error",
    "method", "path", "status", "duration_ms", "remote", "url", "docs_url", "db", "queued",
    "running", "signal",
)
"""The structured fields, in the order they are written. The first eight describe an order;
the rest belong to start, stop, signal and access lines."""
EVENT = "event"
DEFAULT_EVENT = "log"
"""The event of a line whose code names none (a free-form message)."""

ACCESS_LOGGER = "skipline.access"


def fields(event: str, **values: Any) -> dict[str, Any]:
    """The `extra=` of a structured line: its event name and the fields that are known (None
    values are dropped, so a field that does not apply never appears)."""
    known = {name: value for name, value in values.items() if value is not None}
    unknown = set(known) - set(FIELDS)
    if unknown:
        raise ValueError(f"not a log field: {', '.join(sorted(unknown))}")
    return {EVENT: event, **known}


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a record carries, in FIELDS order."""
    values = record.__dict__
    return {name: values[name] for name in FIELDS if values.get(name) is not None}


def timestamp(record: logging.LogRecord) -> str:
    """UTC, ISO 8601 with milliseconds: 2026-12-02T07:05:41.123Z."""
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, event, logger, message, the fields that apply,
    and the traceback (as `exception`) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": timestamp(record),
            "level": record.levelname.lower(),
            "event": getattr(record, EVENT, DEFAULT_EVENT),
            "logger": record.name,
            "message": record.getMessage(),
            **record_fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`ts LEVEL logger: message key=value …`: the same fields as the JSON lines."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        extra = " ".join(f"{name}={_text_value(value)}"
                         for name, value in record_fields(record).items())
        if extra:
            text = f"{text}  [{extra}]"
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        return text


def _text_value(value: Any) -> str:
    """Bare when it is one word, JSON-quoted when it has spaces or quotes (an error text)."""
    text = str(value)
    if text and not any(char.isspace() or char in "\"=[]" for char in text):
        return text
    return json.dumps(text, ensure_ascii=False)


def configure_logging(level: str, log_format: LogFormat = "text", access_log: bool = False) -> None:
    """Log lines on stderr from `level` up, in `log_format`. The access log is separate from
    the level: off unless `access_log`, and then written at any level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # Python's warnings as log lines too (JSON ones in json)
    access = logging.getLogger(ACCESS_LOGGER)
    access.setLevel(logging.INFO if access_log else logging.CRITICAL + 1)


def order_fields(event: str, order: Order, **values: Any) -> dict[str, Any]:
    """The `extra=` of a line about one order: its id, tier and attempt, its wait from
    acceptance (or its not_before) to its (latest) start when it has started, the customer
    and kind when the order has them (an empty one is unknown, not written), and `values`."""
    wait_ms = None
    if order.started_at is not None:  # a scheduled order waits from its not_before
        due = max(order.created_at, getattr(order, "not_before", None) or 0.0)
        wait_ms = round(1000 * (order.started_at - due), 1)
    known = {name: getattr(order, name, None) or None for name in ("customer", "kind")}
    return fields(event, order_id=order.id, tier=order.tier, attempt=order.attempts,
                  wait_ms=wait_ms, **known, **values)
