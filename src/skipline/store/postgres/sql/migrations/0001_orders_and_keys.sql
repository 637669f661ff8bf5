-- The first schema: orders and API keys.
-- Times are timestamptz; the store converts them to epoch seconds for the domain.
-- Key columns use the "C" collation: byte order, which is code point order in UTF-8 (what
-- Python's sorting does), and much cheaper to compare in indexes than a locale's rules.

CREATE TABLE orders (
    id               text COLLATE "C" PRIMARY KEY,
    seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    tier             text COLLATE "C" NOT NULL,
    priority         integer NOT NULL,
    status           text COLLATE "C" NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    rescues          integer NOT NULL DEFAULT 0 CHECK (rescues >= 0),
    payload          json,
    duration         double precision NOT NULL DEFAULT 0,
    owner            text COLLATE "C" NOT NULL DEFAULT '',
    idempotency_key  text COLLATE "C",
    created_at       timestamptz NOT NULL,
    overdue_at       timestamptz,
    available_at     timestamptz NOT NULL,
    started_at       timestamptz,
    finished_at      timestamptz,
    result           json,
    error            text,
    worker_id        text,
    lease_token      text COLLATE "C",
    lease_expires_at timestamptz,
    CHECK ((status = 'running') = (lease_token IS NOT NULL AND lease_expires_at IS NOT NULL))
);

-- Ready orders in claim-rule order (priority, then acceptance sequence): the claim scans this,
-- and queued_counts counts it (tier included) without reading the finished orders.
CREATE INDEX orders_ready ON orders (priority, seq) INCLUDE (tier) WHERE status = 'queued';

-- Queued orders that can become overdue, found by the moment they do.
CREATE INDEX orders_ready_overdue ON orders (overdue_at, seq)
    WHERE status = 'queued' AND overdue_at IS NOT NULL;

-- Leases to rescue once they expire.
CREATE INDEX orders_leases ON orders (lease_expires_at) WHERE status = 'running';

-- One order per (owner, Idempotency-Key), across every process.
CREATE UNIQUE INDEX orders_idempotency ON orders (owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- An API key's own orders, newest first (anonymous orders are never listed by owner).
CREATE INDEX orders_owner ON orders (owner, seq) WHERE owner <> '';

-- Stats: the most recently started orders per tier, and the last minute's finishes.
CREATE INDEX orders_started ON orders (tier, started_at) WHERE started_at IS NOT NULL;
CREATE INDEX orders_finished ON orders (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE api_keys (
    name       text COLLATE "C" PRIMARY KEY,
    tier       text COLLATE "C" NOT NULL,
    admin      boolean NOT NULL DEFAULT false,
    key_hash   text COLLATE "C" NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    revoked    boolean NOT NULL DEFAULT false
);
