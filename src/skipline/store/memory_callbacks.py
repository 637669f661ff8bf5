"""The memory store's callback deliveries (a dict, like the rest of it): made pending when an
order with a callback_url becomes final, claimed when due, and recorded after each attempt."""

from __future__ import annotations

from collections.abc import Sequence

from msgspec.structs import replace

from skipline.domain.models import Delivery, Order


class MemoryCallbacks:
    def __init__(self) -> None:
        self._deliveries: dict[str, Delivery] = {}

    def order_finished(self, order: Order, now: float) -> None:
        """A final order with a callback gets a pending delivery (again, after a requeue)."""
        if order.callback_url is not None:
            self._deliveries[order.id] = Delivery(
                order.id, order.callback_url, "pending", 0, None, now, now)

    def forget(self, order_id: str) -> None:
        self._deliveries.pop(order_id, None)

    def claim(self, limit: int, lease_seconds: float, now: float) -> list[Delivery]:
        due = sorted((d for d in self._deliveries.values()
                      if d.status == "pending" and d.next_at <= now), key=lambda d: d.next_at)
        claimed = [replace(d, next_at=now + lease_seconds) for d in due[:max(0, limit)]]
        self._deliveries.update((d.order_id, d) for d in claimed)
        return claimed

    def record(
        self, order_id: str, error: str | None, retry_delay: float | None, now: float
    ) -> None:
        delivery = self._deliveries.get(order_id)
        if delivery is None:
            return
        attempts = delivery.attempts + 1
        if error is None:
            updated = replace(delivery, status="delivered", attempts=attempts, last_error=None)
        elif retry_delay is None:
            updated = replace(delivery, status="failed", attempts=attempts, last_error=error)
        else:
            updated = replace(delivery, attempts=attempts, last_error=error,
                              next_at=now + retry_delay)
        self._deliveries[order_id] = updated

    def find(self, order_ids: Sequence[str]) -> dict[str, Delivery]:
        return {i: self._deliveries[i] for i in order_ids if i in self._deliveries}
