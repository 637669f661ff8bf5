-- The first schema: orders, API keys, and the wake-up trigger.
-- Times are timestamptz; the store converts them to epoch seconds for the domain.

CREATE TABLE orders (
    id               text PRIMARY KEY,
    seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    tier             text NOT NULL,
    priority         integer NOT NULL,
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    rescues          integer NOT NULL DEFAULT 0 CHECK (rescues >= 0),
    payload          json,
    duration         double precision NOT NULL DEFAULT 0,
    owner            text NOT NULL DEFAULT '',
    idempotency_key  text,
    created_at       timestamptz NOT NULL,
    overdue_at       timestamptz,
    available_at     timestamptz NOT NULL,
    started_at       timestamptz,
    finished_at      timestamptz,
    result           json,
    error            text,
    worker_id        text,
    lease_token      text,
    lease_expires_at timestamptz,
    CHECK ((status = 'running') = (lease_token IS NOT NULL AND lease_expires_at IS NOT NULL))
);

-- Ready orders in claim-rule order (priority, then acceptance sequence): the claim scans this.
CREATE INDEX orders_ready ON orders (priority, seq) WHERE status = 'queued';

-- Queued orders that can become overdue, found by the moment they do.
CREATE INDEX orders_ready_overdue ON orders (overdue_at, seq)
    WHERE status = 'queued' AND overdue_at IS NOT NULL;

-- Leases to rescue once they expire.
CREATE INDEX orders_leases ON orders (lease_expires_at) WHERE status = 'running';

-- One order per (owner, Idempotency-Key), across every process.
CREATE UNIQUE INDEX orders_idempotency ON orders (owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- A caller's own orders, newest first.
CREATE INDEX orders_owner ON orders (owner, seq);

-- Stats: the most recently started orders per tier, and the last minute's finishes.
CREATE INDEX orders_started ON orders (tier, started_at) WHERE started_at IS NOT NULL;
CREATE INDEX orders_finished ON orders (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE api_keys (
    name       text PRIMARY KEY,
    tier       text NOT NULL,
    admin      boolean NOT NULL DEFAULT false,
    key_hash   text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    revoked    boolean NOT NULL DEFAULT false
);

-- Wake idle workers the moment an order becomes queued (submitted, released, retried,
-- rescued). NOTIFY is transactional and folds duplicates, so a batch sends one message.
CREATE FUNCTION skipline_notify_ready() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('skipline_ready', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER orders_notify_ready
    AFTER INSERT OR UPDATE OF status ON orders
    FOR EACH ROW WHEN (NEW.status = 'queued')
    EXECUTE FUNCTION skipline_notify_ready();
