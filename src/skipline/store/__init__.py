"""Stores, chosen by URL scheme and imported lazily (a missing extra gets an install hint)."""

from __future__ import annotations

from skipline.clock import Clock, SystemClock
from skipline.domain.errors import ConfigError
from skipline.domain.models import Durability
from skipline.store.base import Store


def open_store(url: str, clock: Clock | None = None, durability: Durability = "full") -> Store:
    """Build (but do not open) the store that `url` names: sqlite:///path, postgresql://…,
    memory://."""
    clock = clock or SystemClock()
    if url.startswith("memory://"):
        from skipline.store.memory import MemoryStore

        return MemoryStore(clock)
    if url.startswith("sqlite://"):
        from skipline.store.sqlite import SqliteStore

        return SqliteStore(sqlite_path(url), clock=clock, durability=durability)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            import asyncpg  # noqa: F401
        except ImportError as exc:
            raise ConfigError(
                "the PostgreSQL store needs asyncpg: pip install 'skipline[postgres]'"
            ) from exc
        from skipline.store.postgres import PostgresStore

        return PostgresStore(url, clock=clock, durability=durability)
    raise ConfigError(
        f"unsupported --db URL {url!r}: use sqlite:///path.db, postgresql://… or memory://"
    )


def sqlite_path(url: str) -> str:
    """sqlite:///./x.db -> ./x.db ; sqlite:////abs/x.db -> /abs/x.db ; sqlite:///:memory:."""
    path = url[len("sqlite://"):]
    if path.startswith("/"):
        path = path[1:]
    if not path:
        raise ConfigError(f"--db {url!r} names no file: use sqlite:///path.db")
    return path
