"""Small helpers shared by the contract tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from skipline.domain.models import Order
from skipline.store import open_store
from skipline.store.base import Store

LEASE = 30.0
"""A lease long enough never to expire during a test that does not want it to."""

SHORT_LEASE = 0.3
"""A lease a test lets expire; measured on the store's clock, so real time must pass."""

PAST_SHORT_LEASE = 0.6
"""How long to sleep so that a SHORT_LEASE has surely expired."""


async def fetch(store: Store, order_id: str) -> Order:
    """The stored order, which must exist."""
    order = await store.get(order_id)
    assert order is not None, f"order {order_id} was lost"
    return order


@dataclass
class StoreFactory:
    """Opens stores of one kind on one underlying database, and closes them all at the end."""

    name: str
    url: str
    durable: bool
    build: Callable[[str], Store] = open_store
    """Builds an unopened store from `url`; a kind needing other arguments passes its own."""
    opened: list[Store] = field(default_factory=list)

    async def open(self) -> Store:
        """A freshly opened store; on a durable kind it sees everything committed before."""
        store = self.build(self.url)
        await store.open()
        self.opened.append(store)
        return store

    async def close_all(self) -> None:
        for store in reversed(self.opened):
            await store.close()
