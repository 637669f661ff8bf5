"""PostgreSQL store: many skipline processes, on many machines, sharing one database.

- Claims lock ready orders with `FOR UPDATE SKIP LOCKED`, in the claim rule's order, in SQL.
- Leases, backoff, overdue and every other time are measured on the database clock (now()),
  which every process shares whatever its own clock says; the injected `clock` is therefore
  not used for them.
- Concurrent submissions and completions share statements and commits (group commit).
- Idle workers are woken by LISTEN/NOTIFY (postgres_listener); polling is only a fallback.
- An outage surfaces as StoreUnavailable within about two seconds, and the store reconnects
  by itself when the database is back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

import asyncpg

from skipline.clock import Clock
from skipline.domain.errors import (
    InvalidOrder,
    KeyExists,
    OrderNotCancellable,
    OrderNotFound,
    StoreUnavailable,
)
from skipline.domain.models import (
    JSON,
    ApiKey,
    Lease,
    NewOrder,
    Order,
    OrderQuery,
    Status,
    StoreStats,
    TierCounts,
)
from skipline.store.postgres_batch import Batcher
from skipline.store.postgres_errors import is_outage, outage_as_unavailable
from skipline.store.postgres_listener import WakeListener
from skipline.store.postgres_migrate import migrate
from skipline.store.postgres_rows import (
    key_from_row,
    order_from_columns,
    order_from_row,
    prepare_connection,
)
from skipline.store.queries import load_queries

CONNECT_TIMEOUT = 1.5
"""Seconds to open a connection before calling the database unreachable."""
OPERATION_TIMEOUT = 2.0
"""Seconds any one store call may take (waiting for a connection included)."""
MIGRATION_TIMEOUT = 60.0
POOL_SIZE = 10
RECENT_WAITS = 1000
"""Per tier, how many of the most recent starts the wait-time statistics look at."""
FINISHED_WINDOW = 60.0

Submission = tuple[NewOrder, str | None]
"""An order to accept and its payload as JSON text."""
Completion = tuple[str, str, str | None]
"""(order id, lease token, result as JSON text)."""


class PostgresStore:
    """The Store protocol on PostgreSQL (asyncpg pool + one listening connection)."""

    def __init__(
        self, url: str, clock: Clock | None = None,
        durability: Literal["full", "normal"] = "full", *,
        pool_size: int = POOL_SIZE, timeout: float = OPERATION_TIMEOUT,
    ) -> None:
        """`clock` is part of every store's signature; this store measures time on the
        database clock instead, so that many processes agree."""
        del clock
        self._url = url
        self._durability = durability
        self._pool_size = pool_size
        self._timeout = timeout
        self._queries = load_queries("postgres")
        self._pool: Any = None
        self._listener: WakeListener | None = None
        self._submits: Batcher[Submission, tuple[Order, bool]] | None = None
        self._completions: Batcher[Completion, bool] | None = None

    # --- lifecycle ----------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        with outage_as_unavailable():
            pool = await asyncpg.create_pool(
                self._url, min_size=1, max_size=self._pool_size, timeout=CONNECT_TIMEOUT,
                command_timeout=self._timeout, init=prepare_connection,
                server_settings=self._session_settings("skipline"),
            )
            try:
                async with pool.acquire(timeout=self._timeout) as connection:
                    await migrate(connection, self._queries, MIGRATION_TIMEOUT)
            except BaseException:
                pool.terminate()
                raise
        self._pool = pool
        self._submits = Batcher(self._write_submissions)
        self._completions = Batcher(self._write_completions)
        self._listener = WakeListener(self._connect_listener, self._queries["ping"])
        await self._listener.start(first_connect_seconds=CONNECT_TIMEOUT)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for batcher in (self._submits, self._completions):
            if batcher is not None:
                await batcher.drain()
        if self._listener is not None:
            await self._listener.stop()
        try:
            await asyncio.wait_for(pool.close(), self._timeout)
        except (TimeoutError, asyncpg.InterfaceError, OSError):
            pool.terminate()

    def _session_settings(self, application: str) -> dict[str, str]:
        synchronous = "on" if self._durability == "full" else "off"
        return {"application_name": application, "synchronous_commit": synchronous}

    async def _connect_listener(self) -> Any:
        return await asyncpg.connect(
            self._url, timeout=CONNECT_TIMEOUT,
            server_settings=self._session_settings("skipline-listener"),
        )

    # --- running queries ----------------------------------------------------------------
    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """A pooled connection, with outages turned into StoreUnavailable and the whole
        call bounded by the operation timeout."""
        pool = self._pool
        if pool is None:
            raise StoreUnavailable("the PostgreSQL store is not open")
        with outage_as_unavailable():
            async with asyncio.timeout(self._timeout), pool.acquire() as connection:
                try:
                    yield connection
                except BaseException as error:
                    if isinstance(error, asyncio.CancelledError) or is_outage(error):
                        # Its state is unknown: drop it rather than wait to reset it.
                        connection.terminate()
                    raise

    async def _fetch(self, name: str, *args: Any) -> list[Any]:
        async with self._connection() as connection:
            return list(await connection.fetch(self._queries[name], *args))

    async def _fetchrow(self, name: str, *args: Any) -> Any:
        async with self._connection() as connection:
            return await connection.fetchrow(self._queries[name], *args)

    async def _fetchval(self, name: str, *args: Any) -> Any:
        async with self._connection() as connection:
            return await connection.fetchval(self._queries[name], *args)

    # --- orders -------------------------------------------------------------------------
    async def submit(self, new: NewOrder) -> tuple[Order, bool]:
        submission = (new, json_text(new.payload, "payload"))
        submits = self._submits
        if submits is None:
            raise StoreUnavailable("the PostgreSQL store is not open")
        return await submits.run(submission)

    async def _write_submissions(self, batch: Sequence[Submission]) -> list[tuple[Order, bool]]:
        orders = [new for new, _ in batch]
        rows = await self._fetch(
            "submit_many", [n.id for n in orders], [n.tier for n in orders],
            [n.priority for n in orders], [payload for _, payload in batch],
            [n.duration for n in orders], [n.owner for n in orders],
            [n.idempotency_key for n in orders], [n.max_wait for n in orders],
        )
        created = {row["id"]: row for row in rows}
        results: list[tuple[Order, bool]] = []
        for new in orders:
            row = created.get(new.id)
            if row is not None:
                results.append((order_from_columns(row, new.payload), True))
            else:
                results.append((await self._first_order(new), False))
        return results

    async def _first_order(self, new: NewOrder) -> Order:
        """The order that first used `new`'s idempotency key."""
        row = await self._fetchrow("find_by_idempotency_key", new.owner, new.idempotency_key)
        if row is None:
            raise RuntimeError(f"order {new.id} was neither inserted nor found")
        return order_from_row(row)

    async def get(self, order_id: str) -> Order | None:
        row = await self._fetchrow("get_order", order_id)
        return None if row is None else order_from_row(row)

    async def list_orders(self, query: OrderQuery) -> list[Order]:
        status = None if query.status is None else query.status.value
        name = "list_owner_orders" if query.owner else "list_orders"
        rows = await self._fetch(
            name, query.owner, status, query.tier, query.before_seq, query.limit,
        )
        return [order_from_row(row) for row in rows]

    async def cancel(self, order_id: str) -> Order:
        row = await self._fetchrow("cancel", order_id)
        if row is not None:
            return order_from_row(row)
        if await self.get(order_id) is None:
            raise OrderNotFound()
        raise OrderNotCancellable()

    # --- the worker side ------------------------------------------------------------------
    async def claim(self, worker_id: str, limit: int, lease_seconds: float) -> list[Lease]:
        if limit <= 0:
            return []
        rows = await self._fetch("claim", worker_id, limit, lease_seconds)
        return [Lease(order_from_row(row), row["lease_token"]) for row in rows]

    async def heartbeat(self, leases: Sequence[tuple[str, str]], lease_seconds: float) -> set[str]:
        if not leases:
            return set()
        ids, tokens = split_pairs(leases)
        rows = await self._fetch("heartbeat", ids, tokens, lease_seconds)
        return {row["id"] for row in rows}

    async def complete(self, order_id: str, token: str, result: JSON) -> bool:
        completions = self._completions
        if completions is None:
            raise StoreUnavailable("the PostgreSQL store is not open")
        return await completions.run((order_id, token, json_text(result, "result")))

    async def _write_completions(self, batch: Sequence[Completion]) -> list[bool]:
        first = unique_orders(batch)
        rows = await self._fetch(
            "complete_many", [batch[i][0] for i in first],
            [batch[i][1] for i in first], [batch[i][2] for i in first],
        )
        done = {row["id"] for row in rows}
        return [i in first and batch[i][0] in done for i in range(len(batch))]

    async def fail(
        self, order_id: str, token: str, error: str, retry_delay: float | None
    ) -> Status | None:
        text = error.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL characters
        status = await self._fetchval("fail", order_id, token, text, retry_delay)
        return None if status is None else Status(status)

    async def release(self, order_ids_tokens: Sequence[tuple[str, str]]) -> int:
        if not order_ids_tokens:
            return 0
        ids, tokens = split_pairs(order_ids_tokens)
        return len(await self._fetch("release", ids, tokens))

    async def rescue_expired(self, max_rescues: int) -> int:
        return len(await self._fetch("rescue_expired", max_rescues))

    async def wait_for_work(self, max_seconds: float) -> None:
        """Returns on a notification; never raises, even during an outage (it then returns
        after a short poll, and the caller's next claim reports the outage)."""
        if self._listener is None:
            await asyncio.sleep(max_seconds)
            return
        await self._listener.wait(max_seconds)

    # --- reporting --------------------------------------------------------------------------
    async def stats(self) -> StoreStats:
        counts: dict[str, dict[str, int]] = {}
        for row in await self._fetch("status_counts"):
            counts.setdefault(row["tier"], {})[row["status"]] = row["orders"]
        waits: dict[str, list[float]] = {}
        for row in await self._fetch("recent_starts", list(counts), RECENT_WAITS):
            waits.setdefault(row["tier"], []).append(row["started_at"] - row["created_at"])
        finished = await self._fetchval("finished_since", FINISHED_WINDOW)
        return StoreStats(
            counts={tier: TierCounts(**c) for tier, c in counts.items()},
            recent_waits=waits,
            finished_last_minute=finished,
        )

    async def queued_counts(self) -> dict[str, int]:
        return {row["tier"]: row["orders"] for row in await self._fetch("queued_counts")}

    async def ping(self) -> None:
        await self._fetchval("ping")

    # --- API keys ---------------------------------------------------------------------------
    async def add_key(self, key: ApiKey) -> None:
        added = await self._fetchval(
            "add_key", key.name, key.tier, key.admin, key.key_hash, key.created_at, key.revoked,
        )
        if added is None:
            raise KeyExists(f"an API key named {key.name!r} already exists")

    async def find_key(self, key_hash: str) -> ApiKey | None:
        row = await self._fetchrow("find_key", key_hash)
        return None if row is None else key_from_row(row)

    async def list_keys(self) -> list[ApiKey]:
        return [key_from_row(row) for row in await self._fetch("list_keys")]

    async def revoke_key(self, name: str) -> bool:
        return await self._fetchval("revoke_key", name) is not None


def json_text(value: JSON, what: str) -> str | None:
    """`value` as JSON text (None stays NULL), checked before it joins a batch so one bad
    value cannot fail the others' statement."""
    if value is None:
        return None
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidOrder(f"the {what} is not JSON: {error}") from error


def split_pairs(pairs: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """[(id, token), ...] -> ([ids], [tokens]) for the array parameters."""
    return [pair[0] for pair in pairs], [pair[1] for pair in pairs]


def unique_orders(batch: Sequence[Completion]) -> set[int]:
    """Indexes of the first completion of each order in a batch (a repeat is a lost race)."""
    seen: dict[str, int] = {}
    for index, (order_id, _, _) in enumerate(batch):
        seen.setdefault(order_id, index)
    return set(seen.values())
