"""PostgreSQL migrations: a database upgraded from any earlier version ends with exactly the
schema of a fresh install; re-opening applies nothing; stores opening together on an empty
database do not race."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from skipline.domain.models import OrderQuery
from skipline.store.migrate import load_migrations
from skipline.store.postgres import PostgresStore
from skipline.store.postgres.migrate import applied_versions, migrate
from skipline.store.queries import load_queries
from skipline.testing import make_new_order

pytestmark = pytest.mark.postgres

SCHEMA_DUMP = """
SELECT 'column' AS kind, table_name || '.' || column_name AS name,
       concat_ws(' ', data_type, is_nullable, column_default, is_identity,
                 identity_generation) AS definition
FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'constraint', conrelid::regclass || '.' || conname, pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'trigger', tgrelid::regclass || '.' || tgname, pg_get_triggerdef(oid)
FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'function', proname, pg_get_functiondef(oid)
FROM pg_proc WHERE pronamespace = 'public'::regnamespace
UNION ALL
SELECT 'sequence', sequencename, concat_ws(' ', data_type, start_value, increment_by)
FROM pg_sequences WHERE schemaname = 'public'
ORDER BY 1, 2
"""


async def schema_of(url: str) -> list[tuple[str, str, str]]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(SCHEMA_DUMP)
    finally:
        await connection.close()
    return [(row["kind"], row["name"], row["definition"]) for row in rows]


async def install_by_hand(url: str, versions: int) -> None:
    """What an older release left behind: the first `versions` migrations, each in its own
    transaction, recorded the way the store records them."""
    queries = load_queries("postgres")
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(queries["migrations_table"])
        for migration in load_migrations("postgres")[:versions]:
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    queries["migrations_record"], migration.version, migration.name,
                )
    finally:
        await connection.close()


async def open_and_close(url: str) -> None:
    store = PostgresStore(url)
    await store.open()
    await store.close()


async def versions_in(url: str) -> list[int]:
    connection = await asyncpg.connect(url)
    try:
        return await applied_versions(connection, load_queries("postgres"))
    finally:
        await connection.close()


async def test_a_fresh_install_creates_the_whole_schema(postgres_empty_url: str) -> None:
    await open_and_close(postgres_empty_url)

    schema = await schema_of(postgres_empty_url)
    names = {(kind, name) for kind, name, _ in schema}
    assert ("index", "orders_ready") in names
    assert ("index", "orders_ready_overdue") in names
    assert ("column", "api_keys.key_hash") in names
    assert await versions_in(postgres_empty_url) == [m.version for m in load_migrations("postgres")]


@pytest.mark.parametrize("start", range(len(load_migrations("postgres"))))
async def test_upgrading_from_any_version_gives_the_fresh_schema(
    start: int, postgres_empty_url: str, postgres_url: str,
) -> None:
    await install_by_hand(postgres_empty_url, start)

    await open_and_close(postgres_empty_url)

    assert await schema_of(postgres_empty_url) == await schema_of(postgres_url)
    assert await versions_in(postgres_empty_url) == await versions_in(postgres_url)


async def test_the_scripts_alone_give_the_schema_the_store_installs(
    postgres_empty_url: str, postgres_url: str,
) -> None:
    await install_by_hand(postgres_empty_url, len(load_migrations("postgres")))

    assert await schema_of(postgres_empty_url) == await schema_of(postgres_url)


async def test_reopening_applies_nothing(postgres_empty_url: str) -> None:
    await open_and_close(postgres_empty_url)
    connection: Any = await asyncpg.connect(postgres_empty_url)
    try:
        first = await connection.fetch("SELECT version, applied_at FROM schema_migrations")
        await open_and_close(postgres_empty_url)
        applied_now = await migrate(connection, load_queries("postgres"), 10.0)
        again = await connection.fetch("SELECT version, applied_at FROM schema_migrations")
    finally:
        await connection.close()

    assert applied_now == []
    assert [tuple(row) for row in again] == [tuple(row) for row in first]


async def test_stores_opening_together_on_an_empty_database_all_succeed(
    postgres_empty_url: str,
) -> None:
    stores = [PostgresStore(postgres_empty_url) for _ in range(4)]

    results = await asyncio.gather(*(store.open() for store in stores), return_exceptions=True)
    try:
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert await versions_in(postgres_empty_url) == [
            m.version for m in load_migrations("postgres")
        ]
        for store in stores:
            await store.submit(make_new_order())
        assert len(await stores[0].list_orders(OrderQuery())) == len(stores)
    finally:
        await asyncio.gather(*(store.close() for store in stores))
