"""The CLI's table of one order names its customer when it has one."""

from __future__ import annotations

from skipline.cli.tables import order_rows

ORDER = {"id": "o1", "status": "queued", "tier": "regular", "priority": 1, "attempts": 0,
         "created_at": "2026-12-02T07:05:41Z", "customer": None}


def test_an_order_for_a_customer_shows_it_after_the_tier() -> None:
    rows = order_rows({**ORDER, "customer": "c-42"})

    labels = [label for label, _ in rows]
    assert ("customer", "c-42") in rows
    assert labels.index("customer") == labels.index("tier") + 1


def test_an_order_without_a_customer_has_no_such_line() -> None:
    assert "customer" not in [label for label, _ in order_rows(ORDER)]
