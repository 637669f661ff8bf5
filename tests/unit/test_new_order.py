"""NewOrder.queued: the one place a submission becomes a queued Order, for every store."""

from __future__ import annotations

from skipline.domain.models import NewOrder, Order, Status


def test_a_queued_order_carries_the_submission_and_the_stores_numbers() -> None:
    new = NewOrder(id="o-1", tier="vip", priority=0, payload={"a": [1]}, duration=2.5,
                   owner="acme", idempotency_key="k-1", max_wait=30.0)
    assert new.queued(7, 100.0, 130.0) == Order(
        id="o-1", seq=7, tier="vip", priority=0, status=Status.QUEUED, attempts=0, rescues=0,
        payload={"a": [1]}, duration=2.5, owner="acme", created_at=100.0, overdue_at=130.0,
        available_at=100.0, started_at=None, finished_at=None, result=None, error=None,
        idempotency_key="k-1",
    )


def test_the_overdue_time_counts_from_acceptance_and_never_comes_without_max_wait() -> None:
    assert NewOrder(id="a", tier="vip", priority=0, max_wait=30.0).overdue_from(100.0) == 130.0
    assert NewOrder(id="b", tier="vip", priority=0).overdue_from(100.0) is None
