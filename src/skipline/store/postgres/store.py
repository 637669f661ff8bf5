"""PostgreSQL store: many skipline processes, on many machines, sharing one database.

- Claims lock ready orders with `FOR UPDATE SKIP LOCKED`, in the claim rule's order, in SQL.
- Leases, backoff, overdue and every other time are measured on the database clock (now()),
  which every process shares whatever its own clock says; the injected `clock` is therefore
  not used for them.
- Concurrent submissions and completions share statements and commits (group commit).
- Idle workers are woken by LISTEN/NOTIFY (listener.py); polling is only a fallback.
- An outage surfaces as StoreUnavailable within about two seconds, and the store reconnects
  by itself when the database is back.
- A submission or completion whose commit is in doubt (the connection died after it was sent)
  is not reported as failed blindly: its outcome is read back once it can be trusted
  (doubt.py). A submission's callers wait for that until ANSWER_SECONDS after they
  called (then: OutcomeUnknown, with the order's id); a completion's, up to IN_DOUBT_SECONDS.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from functools import partial
from typing import Any

import asyncpg

from skipline.clock import Clock
from skipline.domain.errors import (
    InvalidOrder,
    KeyExists,
    OrderNotCancellable,
    OrderNotFound,
    OrderNotRequeueable,
    OutcomeUnknown,
    StoreUnavailable,
)
from skipline.domain.fairness import GroupKey
from skipline.domain.models import (
    JSON,
    ApiKey,
    Delivery,
    Durability,
    Lease,
    NewOrder,
    Order,
    OrderQuery,
    QueueHealth,
    Status,
    StoreStats,
    TierCounts,
)
from skipline.domain.reporting import (
    BUSIEST_GROUPS,
    LONGEST_WAITING,
    RECENT_WAITS,
    THROUGHPUT_WINDOW,
)
from skipline.domain.scheduling import DUE_LOOKAHEAD, earliest_due
from skipline.domain.workers import WorkerProcess, WorkerSignIn
from skipline.store import health
from skipline.store.finishes import FinishWatch, Waiting
from skipline.store.postgres.batch import Batcher, WriteInDoubt
from skipline.store.postgres.doubt import (
    ANSWER_SECONDS,
    IN_DOUBT_SECONDS,
    ORDER_OUTCOME_UNKNOWN,
    OUTCOME_UNKNOWN,
    Backend,
    CommitInDoubt,
    LateSettlements,
    TrackedConnection,
    identify_backend,
    read_once_settled,
)
from skipline.store.postgres.errors import is_outage, outage_as_unavailable
from skipline.store.postgres.listener import WakeListener
from skipline.store.postgres.migrate import migrate
from skipline.store.postgres.rows import (
    delivery_from_row,
    key_from_row,
    leases_from_claim,
    order_from_row,
    prepare_connection,
    submission_columns,
    submitted_order,
    worker_from_row,
)
from skipline.store.queries import load_queries

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 1.5
"""Seconds to open a connection before calling the database unreachable."""
OPERATION_TIMEOUT = 2.0
"""Seconds any one store call may take (waiting for a connection included)."""
MIGRATION_TIMEOUT = 60.0
POOL_SIZE = 10
POOL_FLOOR = 4
"""Connections the main pool opens at once and keeps open however idle it is; one that is lost
is replaced in the background. A new connection costs four round trips before its first
statement (startup, then the backend's identity), which through a slow network a call should
not have to wait for."""
LEASE_POOL_SIZE = 2
"""Connections reserved for renewals (heartbeats: leases and the worker registry's rows), one
of them kept open like the main pool's floor: a renewal must never queue behind the process's
other calls for a connection, nor wait for one to be made, or a busy pool on a slow network
lets a lease expire under a live worker (invariant 4 (docs/architecture.md))."""

Submission = tuple[NewOrder, str | None, float]
"""An order to accept, its payload as JSON text, and when it was handed to the store (event
loop time): its callers are answered within ANSWER_SECONDS of that."""
Completion = tuple[str, str, str | None]
"""(order id, lease token, result as JSON text)."""
Submitted = tuple[Order, bool] | Exception
"""One submission's outcome: (order, created), or the error its caller gets."""
Completed = bool | Exception

NOT_STORED = "the PostgreSQL database went away before this order was stored"
NOT_SENT = ("the PostgreSQL database did not answer the write before this order; it was not "
            "sent")
WRITE_FLOOR_SECONDS = 0.1
"""A submission batch with less of its answer time left than this is not written (a healthy
write takes milliseconds; what waited this long sat behind a write that hung)."""


class PostgresStore:
    """The Store protocol on PostgreSQL (asyncpg pool + one listening connection)."""

    def __init__(
        self, url: str, clock: Clock | None = None,
        durability: Durability = "full", *,
        pool_size: int = POOL_SIZE, timeout: float = OPERATION_TIMEOUT,
        in_doubt_seconds: float = IN_DOUBT_SECONDS,
    ) -> None:
        """`clock` is part of every store's signature; this store measures time on the
        database clock instead, so that many processes agree. `in_doubt_seconds`: how long
        settling a write in doubt may go on; a completion's callers wait that long for its
        outcome, a submission's only until ANSWER_SECONDS after its call
        (doubt.py)."""
        del clock
        self._url = url
        self._durability = durability
        self._pool_size = pool_size
        self._timeout = timeout
        self._in_doubt_seconds = in_doubt_seconds
        self._late_settlements = LateSettlements()
        self._queries = load_queries("postgres")
        self._pool: Any = None
        self._lease_pool: Any = None
        self._listener: WakeListener | None = None
        self._finishes = FinishWatch()
        self._submits: Batcher[Submission, tuple[Order, bool]] | None = None
        self._completions: Batcher[Completion, bool] | None = None
        self._looks: Batcher[str, Order | None] | None = None

    # --- lifecycle ----------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        with outage_as_unavailable():
            pool = await self._create_pool(min(POOL_FLOOR, self._pool_size), self._pool_size)
            try:
                async with pool.acquire(timeout=self._timeout) as connection:
                    await migrate(connection, self._queries, MIGRATION_TIMEOUT)
                lease_pool = await self._create_pool(1, LEASE_POOL_SIZE)
            except BaseException:
                pool.terminate()
                raise
        self._pool, self._lease_pool = pool, lease_pool
        self._submits = Batcher(self._write_submissions)
        self._completions = Batcher(self._write_completions)
        self._looks = Batcher(self._read_orders)
        self._listener = WakeListener(
            self._connect_listener, self._queries["ping"], self._finishes)
        await self._listener.start(first_connect_seconds=CONNECT_TIMEOUT)

    async def _create_pool(self, min_size: int, max_size: int) -> Any:
        return await asyncpg.create_pool(
            self._url, min_size=min_size, max_size=max_size, timeout=CONNECT_TIMEOUT,
            command_timeout=self._timeout, init=self._prepare_connection,
            reset=keep_session, connection_class=TrackedConnection,
            server_settings=self._session_settings("skipline"),
        )

    async def close(self) -> None:
        """Writes still pending are finished first (they need the pool); the settling of
        submissions already answered "outcome unknown" is dropped (it only logs)."""
        if self._pool is None:
            return
        for batcher in (self._submits, self._completions, self._looks):
            if batcher is not None:
                await batcher.drain()
        await self._late_settlements.stop()
        pools = [pool for pool in (self._pool, self._lease_pool) if pool is not None]
        self._pool = self._lease_pool = None
        if self._listener is not None:
            await self._listener.stop()
        for pool in pools:
            try:
                await asyncio.wait_for(pool.close(), self._timeout)
            except (TimeoutError, asyncpg.InterfaceError, OSError):
                pool.terminate()

    def _session_settings(self, application: str) -> dict[str, str]:
        synchronous = "on" if self._durability == "full" else "off"
        return {"application_name": application, "synchronous_commit": synchronous}

    async def _prepare_connection(self, connection: Any) -> None:
        await prepare_connection(connection)
        await identify_backend(connection, self._queries["backend_identity"])

    async def _connect_listener(self) -> Any:
        return await asyncpg.connect(
            self._url, timeout=CONNECT_TIMEOUT,
            server_settings=self._session_settings("skipline-listener"),
        )

    # --- running queries ----------------------------------------------------------------
    @asynccontextmanager
    async def _connection(
        self, *, leases: bool = False, acquire_seconds: float | None = None,
    ) -> AsyncIterator[Any]:
        """A pooled connection (from the pool reserved for renewals with `leases`), with
        outages turned into StoreUnavailable and the whole call bounded by the operation
        timeout. With `acquire_seconds`, getting the connection is bounded by that instead,
        and the call gets the operation timeout from when it has one."""
        pool = self._lease_pool if leases else self._pool
        if pool is None:
            raise StoreUnavailable("the PostgreSQL store is not open")
        first_bound = self._timeout if acquire_seconds is None else acquire_seconds
        with outage_as_unavailable():
            async with asyncio.timeout(first_bound) as bound, pool.acquire() as connection:
                if acquire_seconds is not None and not bound.expired():
                    bound.reschedule(asyncio.get_running_loop().time() + self._timeout)
                try:
                    yield connection
                except BaseException as error:
                    if isinstance(error, asyncio.CancelledError) or is_outage(error):
                        # Its state is unknown: drop it rather than wait to reset it. (A lost
                        # connection has already gone back to the pool, which says so.)
                        with suppress(asyncpg.InterfaceError):
                            connection.terminate()
                    raise

    async def _fetch(self, name: str, *args: Any, leases: bool = False) -> list[Any]:
        """Rows of query `name`; on the connections reserved for renewals with `leases`
        (LEASE_POOL_SIZE)."""
        async with self._connection(leases=leases) as connection:
            return list(await connection.fetch(self._queries[name], *args))

    async def _fetch_committing(
        self, name: str, *args: Any, acquire_seconds: float | None = None
    ) -> list[Any]:
        """`_fetch` for a statement that writes. An outage once the statement may have
        reached the server raises CommitInDoubt (it may have committed); one before that
        (no connection to be had within `acquire_seconds`), StoreUnavailable."""
        backend: Backend | None = None
        try:
            async with self._connection(acquire_seconds=acquire_seconds) as connection:
                backend = connection.backend
                return list(await connection.fetch(self._queries[name], *args))
        except StoreUnavailable as error:
            if backend is None:
                raise
            raise CommitInDoubt(backend) from error

    async def _read_once_settled(self, backend: Backend, name: str, *args: Any) -> list[Any] | None:
        return await read_once_settled(
            self._connection, self._queries, backend, name, *args,
            seconds=self._in_doubt_seconds,
        )

    async def _fetchrow(self, name: str, *args: Any) -> Any:
        async with self._connection() as connection:
            return await connection.fetchrow(self._queries[name], *args)

    async def _fetchval(self, name: str, *args: Any) -> Any:
        async with self._connection() as connection:
            return await connection.fetchval(self._queries[name], *args)

    # --- orders -------------------------------------------------------------------------
    async def submit(self, new: NewOrder) -> tuple[Order, bool]:
        submission = (new, json_text(new.payload, "payload"), asyncio.get_running_loop().time())
        submits = self._submits
        if submits is None:
            raise StoreUnavailable("the PostgreSQL store is not open")
        return await submits.run(submission)

    async def _write_submissions(self, batch: Sequence[Submission]) -> list[Submitted]:
        """The callers' answer time counts from the earliest call in the batch, not from this
        write: a call that waited behind a write that hung (a silent network) has used up part
        of it already. With too little of it left, the write is not started at all, and a
        connection not had in time is not waited for (the callers are told "not stored", which
        is true: nothing was sent). A write that has started is not cut when the answer time
        is up: its callers are answered then (outcome unknown), and the write goes on to the
        operation timeout on its connection (_settle_late_write). Cutting it would drop a
        connection that is only slow, and through a slow network the pool would spend its time
        opening new ones."""
        orders = [new for new, _, _ in batch]
        loop = asyncio.get_running_loop()
        answer_by = min(called for _, _, called in batch) + ANSWER_SECONDS
        left = answer_by - loop.time()
        if left < WRITE_FLOOR_SECONDS:
            raise StoreUnavailable(NOT_SENT)
        insert = self._fetch_committing(
            "insert_orders", *submission_columns(orders, [p for _, p, _ in batch]),
            acquire_seconds=left - WRITE_FLOOR_SECONDS / 2,
        )
        write = asyncio.create_task(insert, name="skipline-pg-insert")
        try:
            await asyncio.wait({write}, timeout=left)
        except asyncio.CancelledError:
            write.cancel()
            raise
        if not write.done():
            raise WriteInDoubt(partial(self._settle_late_write, write, orders, answer_by))
        try:
            rows = write.result()
        except CommitInDoubt as doubt:
            settle = partial(self._settle_submissions, orders, doubt.backend, answer_by)
            raise WriteInDoubt(settle) from doubt
        return await self._submitted(orders, rows)

    async def _submitted(self, orders: Sequence[NewOrder], rows: Sequence[Any]) -> list[Submitted]:
        """The outcomes of a committed batch, from the rows its insert returned."""
        by_id = {new.id: new for new in orders}
        created = {row["id"]: submitted_order(by_id[row["id"]], row) for row in rows}
        return await self._with_replays(orders, created)

    async def _settle_late_write(
        self, write: asyncio.Task[list[Any]], orders: Sequence[NewOrder], answer_by: float,
    ) -> list[Submitted]:
        """The outcomes of a batch whose write was still running at its callers' answer time
        (`answer_by`, now past): they are answered "unknown", and the write carries on; what
        became of it is logged (settled as any write in doubt if its connection fails)."""

        async def late() -> list[Submitted]:
            try:
                rows = await write
            except CommitInDoubt as doubt:
                return await self._settled_outcomes(orders, doubt.backend)
            except StoreUnavailable:
                return [StoreUnavailable(NOT_STORED) for _ in orders]
            log.warning("a submission write outlasted its callers' answer time (answered "
                        "outcome unknown): %d of %d orders stored %s", len(rows), len(orders),
                        sorted(row["id"] for row in rows)[:10])
            return await self._submitted(orders, rows)

        return await self._late_settlements.answer_by(
            answer_by, late(), partial(outcomes_unknown, orders))

    async def _with_replays(
        self, orders: Sequence[NewOrder], created: dict[str, Order]
    ) -> list[Submitted]:
        """The outcomes of a committed batch: the orders it created, and for the others (their
        idempotency key was used already) the order that first used it. The batch is stored
        whatever happens here, so a failed look-up fails only the replays."""
        replays = [new for new in orders if new.id not in created]
        found: list[Any] = []
        # Neither inserted nor found: the order holding its key was pruned between the two
        # statements (retention). Retrying creates the order anew.
        missing: Exception = StoreUnavailable(
            "the order that held this Idempotency-Key was just deleted by retention; retry")
        if replays:
            try:
                found = await self._fetch("find_submitted", [], *key_columns(replays))
            except StoreUnavailable as error:
                missing = error
        return submission_outcomes(orders, created, found, missing)

    async def _settle_submissions(
        self, orders: Sequence[NewOrder], backend: Backend, answer_by: float
    ) -> list[Submitted]:
        """The outcomes of a batch whose commit was in doubt, as learnt by `answer_by` (event
        loop time). Not learnt by then: OutcomeUnknown for each, and settling goes on without
        the callers (up to in_doubt_seconds), to end the old server process and log what
        became of them."""
        return await self._late_settlements.answer_by(
            answer_by, self._settled_outcomes(orders, backend), partial(outcomes_unknown, orders))

    async def _settled_outcomes(
        self, orders: Sequence[NewOrder], backend: Backend,
    ) -> list[Submitted]:
        """What became of a batch whose commit was in doubt on `backend`: its orders are there
        (created), or an earlier order holds their idempotency key (a replay, as if
        committed), or they were definitely not stored; unknown if that could not be learnt."""
        rows = await self._read_once_settled(
            backend, "find_submitted", [new.id for new in orders], *key_columns(orders),
        )
        if rows is None:
            return outcomes_unknown(orders)
        ours = {new.id for new in orders}
        created = {row["id"]: order_from_row(row) for row in rows if row["id"] in ours}
        log.warning("submissions in doubt: %d of %d were stored %s", len(created),
                    len(orders), sorted(created)[:10])
        return submission_outcomes(orders, created, rows, StoreUnavailable(NOT_STORED))

    async def get(self, order_id: str) -> Order | None:
        """Concurrent gets share one statement with each other and with the looks of waits
        (`_look`): a burst of `?wait=` requests reads its orders first (the authorization
        check), and 10,000 of them queued one by one for the pool's connections raised the
        process's memory high-water mark for good (bench/wait_many.py)."""
        return await self._look(order_id)

    def wait_final(self, order_id: str, max_seconds: float) -> Waiting:
        """Woken by the `skipline_finished` notifications of every process (this one's too:
        its own statements notify the channel it listens on). The looks of concurrent waits
        share statements: thousands arriving at once would otherwise queue for the pool."""
        return self._finishes.wait(order_id, partial(self._look, order_id), max_seconds)

    async def _look(self, order_id: str) -> Order | None:
        looks = self._looks
        if looks is None:
            raise StoreUnavailable("the PostgreSQL store is not open")
        return await looks.run(order_id)

    async def _read_orders(self, order_ids: Sequence[str]) -> list[Order | None]:
        rows = await self._fetch("get_orders", list(set(order_ids)))
        found = {row["id"]: order_from_row(row) for row in rows}
        return [found.get(order_id) for order_id in order_ids]

    async def list_orders(self, query: OrderQuery) -> list[Order]:
        status = None if query.status is None else query.status.value
        name = "list_owner_orders" if query.owner else "list_orders"
        rows = await self._fetch(
            name, query.owner, status, query.tier, query.before_seq, query.limit,
            query.customer, query.kind,
        )
        return [order_from_row(row) for row in rows]

    async def cancel(self, order_id: str) -> Order:
        row = await self._fetchrow("cancel_order", order_id)
        if row is not None:
            return order_from_row(row)
        if await self.get(order_id) is None:
            raise OrderNotFound()
        raise OrderNotCancellable()

    async def requeue(self, order_id: str) -> Order:
        row = await self._fetchrow("requeue_order", order_id)
        if row is not None:
            return order_from_row(row)
        if await self.get(order_id) is None:
            raise OrderNotFound()
        raise OrderNotRequeueable()

    # --- the worker side ------------------------------------------------------------------
    async def claim(
        self, worker_id: str, limit: int, lease_seconds: float,
        kinds: Sequence[str] | None = None,
    ) -> list[Lease]:
        """Promotes what came due (promote_due), then claims: orders scheduled for later are
        outside orders_ready, so they cost the claim nothing."""
        if limit <= 0:
            return []
        await self._fetchval("promote_due")
        wanted = None if kinds is None else list(kinds)
        return leases_from_claim(
            await self._fetch("claim", worker_id, limit, lease_seconds, wanted))

    async def heartbeat(self, leases: Sequence[tuple[str, str]], lease_seconds: float) -> set[str]:
        if not leases:
            return set()
        ids, tokens = split_pairs(leases)
        rows = await self._fetch("heartbeat", ids, tokens, lease_seconds, leases=True)
        return {row["id"] for row in rows}

    async def complete(self, order_id: str, token: str, result: JSON) -> bool:
        completions = self._completions
        if completions is None:
            raise StoreUnavailable("the PostgreSQL store is not open")
        return await completions.run((order_id, token, json_text(result, "result")))

    async def _write_completions(self, batch: Sequence[Completion]) -> list[Completed]:
        first = unique_orders(batch)
        ids, tokens = [batch[i][0] for i in first], [batch[i][1] for i in first]
        try:
            rows = await self._fetch_committing(
                "complete_orders", ids, tokens, [batch[i][2] for i in first],
            )
        except CommitInDoubt as doubt:
            settle = partial(self._settle_completions, batch, ids, tokens, doubt.backend)
            raise WriteInDoubt(settle) from doubt
        done = {row["id"] for row in rows}
        return [i in first and batch[i][0] in done for i in range(len(batch))]

    async def _settle_completions(
        self, batch: Sequence[Completion], ids: list[str], tokens: list[str], backend: Backend
    ) -> list[Completed]:
        """The outcomes of completions whose commit was in doubt. An order that has succeeded
        counts as completed: by this completion or, had its lease expired meanwhile, by a later
        run; either way it is done and must not run again. One still running under the token
        was not completed: StoreUnavailable, so the worker tries again."""
        rows = await self._read_once_settled(backend, "completion_states", ids, tokens)
        if rows is None:
            return [StoreUnavailable(OUTCOME_UNKNOWN) for _ in batch]
        states = {row["id"]: row for row in rows}
        landed = sum(1 for row in rows if row["succeeded"])
        log.warning("completions in doubt: %d of %d orders have succeeded", landed, len(ids))
        first = unique_orders(batch)
        return [
            completion_outcome(states.get(order_id) if i in first else None)
            for i, (order_id, _, _) in enumerate(batch)
        ]

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

    async def prune_finished(self, older_than: float, limit: int) -> int:
        """Measured on the database clock, like leases; see prune_finished in queries.sql."""
        if limit <= 0:
            return 0
        deleted: int = await self._fetchval("prune_finished", older_than, limit)
        return deleted

    async def next_due(self, kinds: Sequence[str] | None = None) -> float | None:
        """One statement through orders_waiting (at most DUE_LOOKAHEAD entries), measured on
        the database clock like every due time here."""
        rows = await self._fetch("next_due", DUE_LOOKAHEAD)
        return earliest_due([(row["due_in"], row["kind"]) for row in rows], kinds)

    async def wait_for_work(self, max_seconds: float) -> None:
        """Returns on a notification; never raises, even during an outage (it then returns
        after a short poll, and the caller's next claim reports the outage)."""
        if self._listener is None:
            await asyncio.sleep(max_seconds)
            return
        await self._listener.wait(max_seconds)

    # --- callback deliveries (pending ones are made by the orders_finished_with_callback
    # trigger, inside the statement that finishes the order) -------------------------------
    async def claim_deliveries(self, limit: int, lease_seconds: float) -> list[Delivery]:
        if limit <= 0:
            return []
        rows = await self._fetch("claim_callbacks", limit, lease_seconds)
        return sorted((delivery_from_row(row) for row in rows), key=lambda d: d.created_at)

    async def record_delivery(
        self, order_id: str, error: str | None, retry_delay: float | None
    ) -> None:
        text = None if error is None else error.replace("\x00", "\ufffd")
        await self._fetch("record_callback", order_id, text, retry_delay)

    async def deliveries(self, order_ids: Sequence[str]) -> dict[str, Delivery]:
        rows = await self._fetch("find_callbacks", list(order_ids))
        return {row["order_id"]: delivery_from_row(row) for row in rows}

    # --- the worker registry (expired on the database clock, like leases) -------------------
    async def register_worker(self, worker: WorkerSignIn, expiry_seconds: float) -> None:
        await self._fetch("register_worker", worker.id, worker.host, worker.pid,
                          list(worker.kinds), worker.slots_total, expiry_seconds)

    async def beat_worker(self, worker_id: str, slots_busy: int, expiry_seconds: float) -> bool:
        """A renewal, like a lease's: it must not come late because the process is busy."""
        return bool(await self._fetch(
            "beat_worker", worker_id, slots_busy, expiry_seconds, leases=True))

    async def remove_worker(self, worker_id: str) -> bool:
        return await self._fetchval("remove_worker", worker_id) is not None

    async def list_workers(self) -> list[WorkerProcess]:
        return [worker_from_row(row) for row in await self._fetch("live_workers")]

    async def prune_workers(self) -> int:
        pruned: int = await self._fetchval("prune_workers")
        return pruned

    # --- reporting --------------------------------------------------------------------------
    async def stats(self) -> StoreStats:
        counts: dict[str, dict[str, int]] = {}
        kinds: dict[str, dict[str, int]] = {}
        for row in await self._fetch("tier_kind_counts"):
            for totals, name in ((counts, row["tier"]), (kinds, row["kind"])):
                by_status = totals.setdefault(name, {})
                by_status[row["status"]] = by_status.get(row["status"], 0) + row["orders"]
        finished = await self._fetchval("finished_since", THROUGHPUT_WINDOW)
        return StoreStats(
            counts={tier: TierCounts(**c) for tier, c in counts.items()},
            recent_waits=await self._recent_waits("recent_starts", "tier", counts),
            finished_last_minute=finished,
            kinds={kind: TierCounts(**c) for kind, c in kinds.items()},
            kind_waits=await self._recent_waits("kind_recent_starts", "kind", kinds),
        )

    async def queue_health(self, window: float) -> QueueHealth:
        """One read-only transaction: now() is its start, so every age is measured from the
        same moment and the figures agree with each other."""
        queries = self._queries
        async with self._connection() as connection, connection.transaction(readonly=True):
            counts = await connection.fetch(queries["queued_health"])
            longest = health.ranked_waiting(
                await connection.fetch(queries["longest_waiting"], LONGEST_WAITING))
            groups = await connection.fetch(queries["busiest_groups"], BUSIEST_GROUPS)
            finished = {row["status"]: row["orders"] for row in await connection.fetch(
                queries["finished_by_status"], window)}
        return health.queue_health(counts, longest, groups, finished)

    async def _recent_waits(
        self, query: str, column: str, names: Iterable[str],
    ) -> dict[str, list[float]]:
        """Waits of the most recently started orders of each tier or kind in `names`."""
        waits: dict[str, list[float]] = {}
        for row in await self._fetch(query, list(names), RECENT_WAITS):
            waits.setdefault(row[column], []).append(row["started_at"] - row["due_at"])
        return waits

    async def queued_counts(self) -> dict[str, int]:
        return {row["tier"]: row["orders"] for row in await self._fetch("queued_counts")}

    async def fair_position(self, priority: int, group: GroupKey) -> tuple[int, int]:
        row = await self._fetchrow("fair_position", priority, *group)
        return int(row["virtual_time"]), int(row["finish"])

    async def ping(self) -> None:
        await self._fetchval("ping")

    # --- API keys ---------------------------------------------------------------------------
    async def add_key(self, key: ApiKey) -> None:
        added = await self._fetchval(
            "insert_key", key.name, key.tier, key.admin, key.key_hash, key.created_at, key.revoked,
            key.customers, key.weight,
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


async def keep_session(connection: Any) -> None:
    """The pool's reset on release: nothing to do. The store leaves no session state behind
    (its advisory lock is transaction-scoped; no cursors, LISTEN or SET on pooled
    connections), and asyncpg still rolls back a transaction left open. The default reset is a
    round trip per release, inside the caller's time bound: through a slow network it doubled
    every call's cost and timed calls out after their statement had committed."""
    del connection


def json_text(value: JSON, what: str) -> str | None:
    """`value` as JSON text (None stays NULL), checked before it joins a batch so one bad
    value cannot fail the others' statement."""
    if value is None:
        return None
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidOrder(f"the {what} is not JSON: {error}") from error


def outcomes_unknown(orders: Sequence[NewOrder]) -> list[Submitted]:
    """OutcomeUnknown for each order of a batch, carrying its id."""
    return [OutcomeUnknown(new.id, ORDER_OUTCOME_UNKNOWN) for new in orders]


def key_columns(orders: Sequence[NewOrder]) -> tuple[list[str], list[str | None]]:
    """(owners, idempotency keys) of `orders`, for find_submitted's parallel arrays."""
    return [new.owner for new in orders], [new.idempotency_key for new in orders]


def submission_outcomes(
    orders: Sequence[NewOrder], created: dict[str, Order], found: Sequence[Any],
    missing: Exception,
) -> list[Submitted]:
    """Per order: (order, True) if it was created; (the first order, False) if its
    idempotency key was used already; else `missing`."""
    by_key = {(row["owner"], row["idempotency_key"]): row for row in found
              if row["idempotency_key"] is not None}
    outcomes: list[Submitted] = []
    for new in orders:
        first = by_key.get((new.owner, new.idempotency_key))
        if new.id in created:
            outcomes.append((created[new.id], True))
        elif first is not None:
            outcomes.append((order_from_row(first), False))
        else:
            outcomes.append(missing)
    return outcomes


def completion_outcome(state: Any) -> Completed:
    """A settled completion: True if the order succeeded; not recorded (retry) if it still
    runs under this lease; False if the lease is gone (or it was a repeat in its batch)."""
    if state is None:
        return False
    if state["succeeded"]:
        return True
    if state["still_held"]:
        return StoreUnavailable("the completion was not recorded; retry")
    return False


def split_pairs(pairs: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """[(id, token), ...] -> ([ids], [tokens]) for the array parameters."""
    return [pair[0] for pair in pairs], [pair[1] for pair in pairs]


def unique_orders(batch: Sequence[Completion]) -> set[int]:
    """Indexes of the first completion of each order in a batch (a repeat is a lost race)."""
    seen: dict[str, int] = {}
    for index, (order_id, _, _) in enumerate(batch):
        seen.setdefault(order_id, index)
    return set(seen.values())
