"""Apply the PostgreSQL migrations, once, even when many processes open the store together.

Everything happens in one transaction holding a transaction-scoped advisory lock: a second
process waits for the first to finish, then finds nothing left to do. A failed migration
rolls back completely (PostgreSQL DDL is transactional).
"""

from __future__ import annotations

from typing import Any

from skipline.store.migrate import load_migrations, pending

MIGRATION_LOCK = 0x736B69706C696E65
"""The advisory lock key ("skipline" in ASCII) that serialises migrations."""


async def migrate(connection: Any, queries: dict[str, str], statement_seconds: float) -> list[int]:
    """Bring the schema up to date; returns the versions applied now (empty when current).
    `statement_seconds` bounds each statement, the wait for another process included."""
    migrations = load_migrations("postgres")
    limit = statement_seconds
    async with connection.transaction():
        await connection.execute(queries["migrations_lock"], MIGRATION_LOCK, timeout=limit)
        await connection.execute(queries["migrations_table"], timeout=limit)
        applied_version = await connection.fetchval(queries["migrations_version"], timeout=limit)
        to_apply = pending(migrations, applied_version)
        for migration in to_apply:
            await connection.execute(migration.sql, timeout=limit)
            await connection.execute(
                queries["migrations_record"], migration.version, migration.name, timeout=limit
            )
    return [m.version for m in to_apply]


async def applied_versions(connection: Any, queries: dict[str, str]) -> list[int]:
    """The versions recorded in schema_migrations, in order (for tests and diagnostics)."""
    rows = await connection.fetch(queries["migrations_list"])
    return [row["version"] for row in rows]
