"""The SQLite store on real files: group commit, disk full, reopen, migrations, the claim query's
plan and speed, and the claim rule in SQL against the domain's rule."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path

import pytest

from skipline.clock import FakeClock, SystemClock
from skipline.domain.errors import KeyExists, OrderNotCancellable, StoreUnavailable
from skipline.domain.models import ApiKey, NewOrder, Order, OrderQuery, Status
from skipline.domain.scheduling import pick_claims
from skipline.store.migrate import load_migrations
from skipline.store.queries import load_queries
from skipline.store.sqlite import SqliteStore
from skipline.store.sqlite.rows import order_from_row

LEASE = 30.0


def new_order(tier: str = "regular", priority: int = 1, payload: object = None,
              max_wait: float | None = None, key: str | None = None) -> NewOrder:
    return NewOrder(id=str(uuid.uuid4()), tier=tier, priority=priority, payload=payload,
                    max_wait=max_wait, idempotency_key=key)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(str(db_path), SystemClock())
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def committed_ids(db_path: Path) -> set[str]:
    """The order ids another connection sees: only what is committed."""
    with sqlite3.connect(db_path) as other:
        return {row[0] for row in other.execute("SELECT id FROM orders")}


async def hold_writer(store: SqliteStore, seconds: float) -> asyncio.Task[None]:
    """Keep the writer busy so the writes queued meanwhile share the next batch."""
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    def busy(connection: sqlite3.Connection) -> None:
        loop.call_soon_threadsafe(started.set)
        time.sleep(seconds)

    task = asyncio.create_task(store.writer.run(busy))
    await started.wait()
    return task


# --- group commit -----------------------------------------------------------------------------
async def test_concurrent_submits_share_commits_and_return_only_once_committed(
    store: SqliteStore, db_path: Path,
) -> None:
    before = store.committed_batches
    seen_committed: list[bool] = []

    async def submit_and_check() -> None:
        order, _ = await store.submit(new_order())
        seen_committed.append(order.id in committed_ids(db_path))

    await asyncio.gather(*(submit_and_check() for _ in range(200)))
    batches = store.committed_batches - before
    assert len(seen_committed) == 200 and all(seen_committed)
    assert 1 <= batches <= 20, f"200 concurrent submits took {batches} transactions"


async def test_one_failing_write_does_not_poison_its_batch(store: SqliteStore) -> None:
    running, _ = await store.submit(new_order())
    await store.claim("w", 1, LEASE)
    await store.add_key(ApiKey("taken", "vip", False, "h1", 1.0))
    before = store.committed_batches
    holder = await hold_writer(store, 0.2)
    results = await asyncio.gather(
        store.submit(new_order()),
        store.cancel(running.id),
        store.add_key(ApiKey("taken", "regular", False, "h2", 2.0)),
        store.submit(new_order()),
        return_exceptions=True,
    )
    await holder
    assert store.committed_batches - before == 2  # the holder's batch, then all four together
    assert isinstance(results[1], OrderNotCancellable)
    assert isinstance(results[2], KeyExists)
    for submitted in (results[0], results[3]):
        assert isinstance(submitted, tuple)
        assert await store.get(submitted[0].id) is not None
    assert [k.tier for k in await store.list_keys()] == ["vip"]


async def test_a_failed_commit_acknowledges_nothing_of_its_batch(
    store: SqliteStore, db_path: Path,
) -> None:
    # A deferred foreign key is checked only at COMMIT: the one way to make COMMIT itself fail
    # on demand. Every write of that batch must fail, including the innocent submit.
    await store.writer.run(lambda c: c.execute(
        "CREATE TABLE scratch"
        " (parent INTEGER REFERENCES orders (seq) DEFERRABLE INITIALLY DEFERRED)"
    ))
    holder = await hold_writer(store, 0.2)
    innocent = store.submit(new_order())
    breaking = store.writer.run(lambda c: c.execute("INSERT INTO scratch VALUES (-1)"))
    results = await asyncio.gather(innocent, breaking, return_exceptions=True)
    await holder
    assert all(isinstance(r, StoreUnavailable) for r in results), results
    assert "FOREIGN KEY" in str(results[0])
    assert committed_ids(db_path) == set()
    order, _ = await store.submit(new_order())  # the store keeps working
    assert committed_ids(db_path) == {order.id}


# --- disk full --------------------------------------------------------------------------------
async def test_disk_full_is_store_unavailable_and_loses_nothing_acknowledged(
    store: SqliteStore, db_path: Path,
) -> None:
    acknowledged = {(await store.submit(new_order(payload={"n": n})))[0].id for n in range(20)}
    pages = await store.writer.run(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
    await store.writer.run(lambda c: c.execute(f"PRAGMA max_page_count = {pages + 2}"))
    refused = 0
    big = "x" * 20_000
    results = await asyncio.gather(
        *(store.submit(new_order(payload=big)) for _ in range(30)), return_exceptions=True,
    )
    for result in results:
        if isinstance(result, StoreUnavailable):
            refused += 1
            assert "full" in result.detail
        else:
            assert isinstance(result, tuple)
            acknowledged.add(result[0].id)
    assert refused > 0
    assert acknowledged <= committed_ids(db_path)

    await store.writer.run(lambda c: c.execute("PRAGMA max_page_count = 1073741823"))
    again, _ = await store.submit(new_order(payload=big))
    acknowledged.add(again.id)
    await store.close()

    reopened = SqliteStore(str(db_path), SystemClock())
    await reopened.open()
    try:
        for order_id in acknowledged:
            assert await reopened.get(order_id) is not None
    finally:
        await reopened.close()
    with sqlite3.connect(db_path) as check:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


# --- errors from sqlite -----------------------------------------------------------------------
async def test_a_locked_database_is_store_unavailable_until_the_lock_goes(
    store: SqliteStore, db_path: Path,
) -> None:
    await store.writer.run(lambda c: c.execute("PRAGMA busy_timeout = 50"))
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable, match="locked"):
            await store.submit(new_order())
        other.execute("ROLLBACK")
    finally:
        other.close()
    order, created = await store.submit(new_order())
    assert created and await store.get(order.id) is not None


async def test_closed_store_refuses_writes_and_pings(db_path: Path) -> None:
    store = SqliteStore(str(db_path), SystemClock())
    await store.open()
    await store.ping()
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreUnavailable):
        await store.submit(new_order())
    with pytest.raises(StoreUnavailable):
        await store.ping()


async def test_an_unreadable_file_is_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "not-a-database.db"
    path.write_bytes(b"this is not sqlite" * 100)
    store = SqliteStore(str(path), SystemClock())
    with pytest.raises(StoreUnavailable, match="could not open"):
        await store.open()
    await store.close()


# --- reopen and migrations --------------------------------------------------------------------
async def test_everything_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dirs" / "skipline.db"
    clock = FakeClock()
    first = SqliteStore(str(path), clock)
    await first.open()
    queued, _ = await first.submit(new_order(payload={"a": [1, 2.5, "x"]}, key="k1"))
    done, _ = await first.submit(new_order(tier="vip", priority=0))
    [lease] = await first.claim("w", 1, LEASE)
    assert lease.order.id == done.id
    await first.complete(done.id, lease.token, {"ok": True})
    await first.add_key(ApiKey("alice", "vip", True, "hash", clock.now()))
    await first.close()

    second = SqliteStore(str(path), clock)
    await second.open()
    try:
        assert await second.get(queued.id) == queued
        finished = await second.get(done.id)
        assert finished is not None and finished.status is Status.SUCCEEDED
        assert finished.result == {"ok": True}
        assert [k.name for k in await second.list_keys()] == ["alice"]
        again, created = await second.submit(new_order(key="k1"))
        assert (again.id, created) == (queued.id, False)
        assert await second.queued_counts() == {"regular": 1}
    finally:
        await second.close()


async def test_migrations_are_recorded_once_and_not_reapplied(db_path: Path) -> None:
    clock = FakeClock()
    for _ in range(3):
        store = SqliteStore(str(db_path), clock)
        await store.open()
        await store.close()
        clock.advance(60)
    with sqlite3.connect(db_path) as check:
        recorded = check.execute(
            "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
        ).fetchall()
    expected = [(m.version, m.name, FakeClock().now()) for m in load_migrations("sqlite")]
    assert recorded == expected


async def test_migrating_step_by_step_gives_the_fresh_schema(tmp_path: Path) -> None:
    from skipline.store.sqlite.schema import apply_migrations

    migrations = load_migrations("sqlite")
    queries = load_queries("sqlite")
    stepwise = sqlite3.connect(tmp_path / "stepwise.db", isolation_level=None)
    fresh = sqlite3.connect(tmp_path / "fresh.db", isolation_level=None)
    try:
        for count in range(1, len(migrations) + 1):
            assert apply_migrations(stepwise, migrations[:count], queries, 0.0) == [count]
        assert apply_migrations(fresh, migrations, queries, 0.0) == [m.version for m in migrations]
        assert apply_migrations(fresh, migrations, queries, 0.0) == []
        schema = "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
        assert stepwise.execute(schema).fetchall() == fresh.execute(schema).fetchall()
    finally:
        stepwise.close()
        fresh.close()


async def test_the_status_check_rebuild_keeps_rows_seqs_and_the_check(tmp_path: Path) -> None:
    """Migration 0002 copies the orders table: a database written under 0001 keeps every row
    as it was, never hands out a seq again (not even a deleted one), and still refuses a
    status outside the five."""
    from skipline.store.sqlite.schema import apply_migrations

    migrations = load_migrations("sqlite")
    queries = load_queries("sqlite")
    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    try:
        apply_migrations(old, migrations[:1], queries, 0.0)
    finally:
        old.close()
    clock = FakeClock()
    with sqlite3.connect(path) as old:
        for index in range(4):
            old.execute(
                "INSERT INTO orders (id, tier, priority, status, payload, duration, owner,"
                " created_at, available_at) VALUES (?, 'regular', 1, ?, '{}', 0, '', ?, ?)",
                (f"id-{index}", "succeeded" if index == 0 else "queued", clock.now(),
                 clock.now()))
        old.execute("DELETE FROM orders WHERE id = 'id-3'")  # the highest seq, 4
        before = old.execute("SELECT * FROM orders ORDER BY seq").fetchall()
    store = SqliteStore(str(path), clock)
    await store.open()
    try:
        with sqlite3.connect(path) as check:
            cursor = check.execute("SELECT * FROM orders ORDER BY seq")
            after = cursor.fetchall()
            names = [entry[0] for entry in cursor.description]
        width = len(before[0])  # later migrations add columns, empty in the old rows
        assert [row[:width] for row in after] == before
        kind = names.index("kind")  # but for the kind, which is the default one
        assert all(row[kind] == "default" for row in after)
        assert all(not any(row[width:kind] + row[kind + 1:]) for row in after)
        order, _ = await store.submit(new_order())
        assert order.seq == 5
        [lease] = await store.claim("w", 1, LEASE)
        assert lease.order.id == "id-1"
    finally:
        await store.close()
    with sqlite3.connect(path) as check, pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        check.execute("UPDATE orders SET status = 'lost' WHERE id = 'id-1'")


async def test_wal_and_synchronous_follow_durability(tmp_path: Path) -> None:
    for durability, expected in (("full", 2), ("normal", 1)):
        store = SqliteStore(str(tmp_path / f"{durability}.db"), SystemClock(), durability)
        await store.open()
        try:
            settings = await store.writer.run(lambda c: (
                c.execute("PRAGMA journal_mode").fetchone()[0],
                c.execute("PRAGMA synchronous").fetchone()[0],
            ))
        finally:
            await store.close()
        assert settings == ("wal", expected)


# --- counters -------------------------------------------------------------------------------
def counted_by_scan(connection: sqlite3.Connection) -> dict[tuple[str, str], int]:
    return {(tier, status): n for tier, status, n in connection.execute(
        "SELECT tier, status, count(*) FROM orders GROUP BY tier, status"
    )}


async def test_counters_match_the_orders_after_every_kind_of_write(db_path: Path) -> None:
    clock = FakeClock()
    store = SqliteStore(str(db_path), clock)
    await store.open()
    try:
        for n in range(12):
            await store.submit(new_order(("vip", "regular")[n % 2], n % 2))
        await store.cancel((await store.list_orders(OrderQuery(limit=1)))[0].id)
        leases = await store.claim("w", 8, 10.0)
        await store.complete(leases[0].order.id, leases[0].token, 1)
        await store.fail(leases[1].order.id, leases[1].token, "boom", None)
        await store.fail(leases[2].order.id, leases[2].token, "boom", 5.0)
        await store.release([(lease.order.id, lease.token) for lease in leases[3:5]])
        await store.heartbeat([(leases[5].order.id, leases[5].token)], 100.0)
        clock.advance(20)
        assert await store.rescue_expired(max_rescues=0) == 2  # leases 6 and 7: poisoned
        assert await store.rescue_expired(max_rescues=5) == 0
        await store.writer.run(lambda c: c.execute(
            "DELETE FROM orders WHERE status = 'succeeded'"
        ))
        stats = await store.stats()
        from_counters = {
            (tier, status): n for tier, counts in stats.counts.items()
            for status, n in asdict(counts).items() if n
        }
        assert from_counters == await store.writer.run(counted_by_scan)
        assert stats.counts["regular"].failed + stats.counts["vip"].failed == 3
        queued = await store.queued_counts()
        assert queued == {
            tier: n for (tier, status), n in from_counters.items() if status == "queued"
        }
    finally:
        await store.close()


# --- the claim query --------------------------------------------------------------------------
def insert_queued(
    connection: sqlite3.Connection, rows: list[tuple[str, str, int, float, float | None, float]],
) -> None:
    """Bulk-insert queued orders: (id, tier, priority, created_at, overdue_at, available_at)."""
    connection.executemany(
        "INSERT INTO orders (id, tier, priority, status, payload, duration, owner, created_at,"
        " overdue_at, available_at) VALUES (?, ?, ?, 'queued', 'null', 0, '', ?, ?, ?)",
        rows,
    )
    count = load_queries("sqlite")["count_orders"]
    for tier, n in Counter(row[1] for row in rows).items():
        connection.execute(count, {"tier": tier, "status": "queued", "n": n})


@pytest.mark.parametrize("kinds", [None, '["ship", "mail"]'])
async def test_claim_plan_reads_only_the_ready_indexes(
    store: SqliteStore, kinds: str | None,
) -> None:
    """Only indexes of orders that are due (waiting = 0): a backlog scheduled for later is
    never read by the pick, whatever kinds it asks for."""
    query = load_queries("sqlite")["claim_candidates"]
    parameters = {"now": 0.0, "limit": 5, "kinds": kinds}
    plan = await store.writer.run(lambda c: [
        row[3] for row in c.execute("EXPLAIN QUERY PLAN " + query, parameters)
    ])
    touching_orders = [step for step in plan if " orders" in step]
    assert touching_orders, plan
    for step in touching_orders:
        assert "USING COVERING INDEX orders_ready_" in step, plan


async def test_promoting_due_orders_reads_only_the_waiting_index(store: SqliteStore) -> None:
    query = load_queries("sqlite")["promote_due"]
    plan = await store.writer.run(lambda c: [
        row[3] for row in c.execute("EXPLAIN QUERY PLAN " + query, {"now": 0.0})
    ])
    reads = [step for step in plan if " orders" in step and "PRIMARY KEY" not in step]
    assert reads, plan
    for step in reads:
        assert "INDEX orders_waiting" in step, plan


@pytest.mark.parametrize("overdue_share", [0.0, 0.7])
async def test_claim_stays_fast_with_100k_queued(db_path: Path, overdue_share: float) -> None:
    clock = FakeClock()
    now = clock.now()
    rng = random.Random(7)
    rows = []
    for n in range(100_000):
        vip = rng.random() < 0.2
        created = now - 1000 + n * 0.01
        overdue = None if vip else created + (300.0 if rng.random() < overdue_share else 10**6)
        rows.append((f"o{n}", "vip" if vip else "regular", 0 if vip else 1, created, overdue,
                     created))
    store = SqliteStore(str(db_path), clock)
    await store.open()
    try:
        await store.writer.run(lambda c: insert_queued(c, rows))
        assert sum((await store.queued_counts()).values()) == 100_000
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            leases = await store.claim("w", 10, LEASE)
            timings.append(time.perf_counter() - started)
            assert len(leases) == 10
        assert min(timings) < 0.050, timings  # a sanity check of the plan, not a benchmark
    finally:
        await store.close()


@pytest.mark.parametrize("seed", range(6))
async def test_claim_query_follows_the_domain_rule(db_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    now = 1_000_000.0
    rows = []
    for n in range(300):
        priority = rng.choice([0, 1, 2])
        created = now - rng.uniform(0, 100)
        overdue = rng.choice([None, created + rng.uniform(0, 200)])
        available = rng.choice([created, now + rng.uniform(-5, 5)])
        rows.append((f"o{n}", f"t{priority}", priority, created, overdue, available))
    store = SqliteStore(str(db_path), FakeClock(now))
    await store.open()
    try:
        await store.writer.run(lambda c: insert_queued(c, rows))
        everything = await store.writer.run(lambda c: [
            order_from_row(row) for row in c.execute("SELECT * FROM orders")
        ])
        query = load_queries("sqlite")["claim_candidates"]
        for limit in (1, 3, 10, 50, 400):
            for at in (now - 50, now, now + 50):
                picked = await store.writer.run(lambda c, at=at, limit=limit: [
                    row["seq"] for row in c.execute(query, {
                        "now": at, "limit": limit, "kinds": None})
                ])
                expected = [o.seq for o in pick_claims(everything, at, limit)]
                assert picked == expected, (limit, at)
    finally:
        await store.close()


async def test_claim_marks_orders_running_in_rule_order(db_path: Path) -> None:
    clock = FakeClock()
    store = SqliteStore(str(db_path), clock)
    await store.open()
    try:
        old, _ = await store.submit(new_order(max_wait=10))
        clock.advance(5)
        vip, _ = await store.submit(new_order("vip", 0))
        regular, _ = await store.submit(new_order(max_wait=10))
        clock.advance(6)  # `old` is overdue, `regular` is not yet
        leases = await store.claim("w", 5, LEASE)
        assert [lease.order.id for lease in leases] == [old.id, vip.id, regular.id]
        assert all(lease.order.status is Status.RUNNING for lease in leases)
        assert all(lease.order.attempts == 1 for lease in leases)
        assert len({lease.token for lease in leases}) == 3
        assert await store.queued_counts() == {}
        stats = await store.stats()
        assert stats.counts["regular"].running == 2 and stats.counts["vip"].running == 1
        assert sorted(stats.recent_waits["regular"]) == [6.0, 11.0]
        assert stats.recent_waits["vip"] == [6.0]
    finally:
        await store.close()


async def test_in_memory_database_works_end_to_end() -> None:
    store = SqliteStore(":memory:", SystemClock())
    await store.open()
    try:
        order, _ = await store.submit(new_order(payload=[1, 2]))
        assert await store.get(order.id) == order
        [lease] = await store.claim("w", 1, LEASE)
        assert await store.complete(order.id, lease.token, "done")
        finished = await store.get(order.id)
        assert isinstance(finished, Order) and finished.result == "done"
    finally:
        await store.close()
