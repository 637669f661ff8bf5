"""PostgreSQL for the scenarios, from the test suite's own harness (tests/postgres_harness.py):
a fresh database on the local server for faults that leave the database alone, and a private
throwaway cluster for faults that stop the database itself. The shared local server is never
stopped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.postgres_harness import LOCAL_HOST, LOCAL_PORT, PostgresServer, ThrowawayCluster


@asynccontextmanager
async def database_on(server: PostgresServer) -> AsyncIterator[str]:
    """A fresh empty database on `server` (skipline migrates it), dropped afterwards."""
    name = await asyncio.to_thread(server.create_database)
    try:
        yield server.url(name)
    finally:
        await asyncio.to_thread(server.drop_database, name)


@asynccontextmanager
async def throwaway_cluster() -> AsyncIterator[ThrowawayCluster]:
    """A private cluster the scenario may stop hard; destroyed afterwards."""
    cluster = await asyncio.to_thread(ThrowawayCluster.create)
    try:
        yield cluster
    finally:
        await asyncio.to_thread(cluster.destroy)


@asynccontextmanager
async def any_database() -> AsyncIterator[str]:
    """A database on the local server when it answers, else on a throwaway cluster."""
    local = PostgresServer(LOCAL_HOST, LOCAL_PORT)
    if await asyncio.to_thread(local.reachable):
        async with database_on(local) as url:
            yield url
        return
    async with throwaway_cluster() as cluster, database_on(cluster) as url:
        yield url
