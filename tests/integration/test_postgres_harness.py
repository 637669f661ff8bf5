"""The PostgreSQL test harness itself: a database per test, copied from a migrated template,
and throwaway clusters that can be stopped and restarted."""

from __future__ import annotations

import asyncpg
import pytest

from skipline.store.migrate import load_migrations
from tests.postgres_harness import PostgresServer, ThrowawayCluster, run_async

pytestmark = pytest.mark.postgres


def database_names(server: PostgresServer) -> set[str]:
    async def names() -> set[str]:
        connection = await asyncpg.connect(server.url("postgres"), timeout=5)
        try:
            rows = await connection.fetch("SELECT datname FROM pg_database")
        finally:
            await connection.close()
        return {row["datname"] for row in rows}

    return run_async(names)


async def test_each_test_gets_a_migrated_database_of_its_own(postgres_url: str) -> None:
    connection = await asyncpg.connect(postgres_url)
    try:
        versions = await connection.fetch("SELECT version FROM schema_migrations")
        orders = await connection.fetchval("SELECT count(*) FROM orders")
    finally:
        await connection.close()

    assert [row["version"] for row in versions] == [
        migration.version for migration in load_migrations("postgres")]
    assert orders == 0


def test_a_temporary_database_is_dropped_afterwards(postgres_server: PostgresServer) -> None:
    name = postgres_server.create_database()
    assert name in database_names(postgres_server)

    postgres_server.drop_database(name)

    assert name not in database_names(postgres_server)


def test_a_throwaway_cluster_stops_restarts_and_vanishes() -> None:
    cluster = ThrowawayCluster.create()
    try:
        assert cluster.reachable()
        cluster.stop("immediate")
        assert not cluster.reachable()
        cluster.start()
        assert cluster.reachable()
    finally:
        cluster.destroy()

    assert not cluster.root.exists()
