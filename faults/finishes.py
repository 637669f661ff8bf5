"""Counting how often the database says an order finished: the PostgreSQL store announces every
order it finishes on the `skipline_finished` channel, from inside the statement that finishes
it, so two announcements for one order mean two statements finished it — an order finished
twice, which a working fence makes impossible. The harness listens on a connection of its own,
straight to the database (never through a partition proxy), for the whole run."""

from __future__ import annotations

from collections import Counter
from contextlib import suppress
from typing import Any

import asyncpg

CHANNEL = "skipline_finished"


class FinishCounter:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._connection: Any = None

    async def start(self, db_url: str) -> None:
        self._connection = await asyncpg.connect(db_url, timeout=5)
        await self._connection.add_listener(CHANNEL, self._heard)

    async def stop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with suppress(asyncpg.InterfaceError, OSError, TimeoutError):
                await connection.close(timeout=5)

    def twice(self) -> list[str]:
        """Orders announced as finished more than once."""
        return sorted(order_id for order_id, n in self.counts.items() if n > 1)

    def _heard(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        self.counts.update(order_id for order_id in payload.split(",") if order_id)
