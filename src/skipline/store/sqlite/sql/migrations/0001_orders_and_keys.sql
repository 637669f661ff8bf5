-- Orders, per-tier status counters, and API keys.

-- seq is the acceptance sequence (FIFO among equals); AUTOINCREMENT so it is never reused.
-- id is the caller's unguessable text id. payload and result are JSON text.
CREATE TABLE orders (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    tier             TEXT    NOT NULL,
    priority         INTEGER NOT NULL,
    status           TEXT    NOT NULL
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    rescues          INTEGER NOT NULL DEFAULT 0,
    payload          TEXT    NOT NULL,
    duration         REAL    NOT NULL,
    owner            TEXT    NOT NULL,
    created_at       REAL    NOT NULL,
    overdue_at       REAL,
    available_at     REAL    NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    result           TEXT,
    error            TEXT,
    idempotency_key  TEXT,
    lease_token      TEXT,
    lease_expires_at REAL,
    worker_id        TEXT
);

-- The claim query reads only these partial indexes of queued rows: by priority then seq for the
-- ordinary half; by deadline to learn at once whether anything is overdue; by seq among rows
-- that have a deadline, to take the overdue ones oldest first. Each carries every column the
-- query tests (status too: SQLite does not infer it from the index's WHERE), so the claim
-- never reads the table to skip a row.
CREATE INDEX orders_queued_by_priority
    ON orders (priority, seq, available_at, overdue_at, status) WHERE status = 'queued';
CREATE INDEX orders_queued_by_deadline
    ON orders (overdue_at, available_at, status)
    WHERE status = 'queued' AND overdue_at IS NOT NULL;
CREATE INDEX orders_queued_with_deadline_by_seq
    ON orders (seq, overdue_at, available_at, status)
    WHERE status = 'queued' AND overdue_at IS NOT NULL;

-- The lease reaper looks only at running rows.
CREATE INDEX orders_running_by_lease ON orders (lease_expires_at) WHERE status = 'running';

-- One order per (owner, Idempotency-Key).
CREATE UNIQUE INDEX orders_by_idempotency_key
    ON orders (owner, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- A key's own orders, newest first.
CREATE INDEX orders_by_owner ON orders (owner, seq);

-- Stats: the most recently started orders of a tier, and what finished lately.
CREATE INDEX orders_started_by_tier
    ON orders (tier, started_at DESC, created_at) WHERE started_at IS NOT NULL;
CREATE INDEX orders_finished ON orders (finished_at) WHERE finished_at IS NOT NULL;

-- How many orders of each tier are in each status. Every write that changes a status updates
-- it in the same savepoint (explicit statements: an AFTER INSERT/UPDATE trigger measured twice
-- the CPU per insert), so admission control and stats never count the orders table. A delete
-- trigger keeps it right for whoever deletes rows (retention, an operator).
CREATE TABLE order_counts (
    tier   TEXT    NOT NULL,
    status TEXT    NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (tier, status)
) WITHOUT ROWID;

CREATE TRIGGER orders_uncounted_on_delete AFTER DELETE ON orders
BEGIN
    UPDATE order_counts SET n = n - 1 WHERE tier = OLD.tier AND status = OLD.status;
END;

-- API keys: only the hash of the secret is kept.
CREATE TABLE api_keys (
    name       TEXT    NOT NULL UNIQUE,
    tier       TEXT    NOT NULL,
    admin      INTEGER NOT NULL,
    key_hash   TEXT    NOT NULL,
    created_at REAL    NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_by_hash ON api_keys (key_hash);
