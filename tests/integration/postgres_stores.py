"""The type of the `open_store` fixture (tests/integration/conftest.py): several PostgreSQL
stores on one test database, as several processes would have them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from skipline.store.postgres import PostgresStore

OpenStore = Callable[..., Awaitable[PostgresStore]]
