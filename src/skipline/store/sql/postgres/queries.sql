-- Named queries of the PostgreSQL store (loaded once per store by skipline.store.queries).
--
-- Time: every query that needs "now" takes it as $1 and uses coalesce($1, now()). The store
-- passes NULL in production, so leases, backoff and overdue times are all measured on the
-- database clock that every process shares; a test clock passes its own time instead.

-- name: migrations_lock
SELECT pg_advisory_xact_lock($1::bigint);

-- name: migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: migrations_version
SELECT coalesce(max(version), 0) FROM schema_migrations;

-- name: migrations_record
INSERT INTO schema_migrations (version, name) VALUES ($1, $2);

-- name: migrations_list
SELECT version FROM schema_migrations ORDER BY version;

-- name: ping
SELECT 1;

-- name: submit_many
-- Accept a batch of concurrent submissions in one statement and one commit (group commit).
-- Parallel arrays: $2 ids, $3 tiers, $4 priorities, $5 payloads (JSON text), $6 durations,
-- $7 owners, $8 idempotency keys, $9 max_wait seconds (NULL: never overdue); ord keeps the
-- callers' order so seq follows arrival. An order whose (owner, idempotency key) was used
-- already is skipped: it returns no row.
WITH clock AS (SELECT coalesce($1::timestamptz, now()) AS now),
batch AS (
    SELECT *
    FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::float8[], $7::text[],
                $8::text[], $9::float8[]) WITH ORDINALITY
         AS b(id, tier, priority, payload, duration, owner, idempotency_key, max_wait, ord)
)
INSERT INTO orders (id, tier, priority, payload, duration, owner, idempotency_key,
                    created_at, overdue_at, available_at)
SELECT b.id, b.tier, b.priority, b.payload::json, b.duration, b.owner, b.idempotency_key,
       clock.now, clock.now + make_interval(secs => b.max_wait), clock.now
FROM batch b, clock
ORDER BY b.ord
ON CONFLICT (owner, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING *;

-- name: find_by_idempotency_key
SELECT * FROM orders WHERE owner = $1 AND idempotency_key = $2;

-- name: get_order
SELECT * FROM orders WHERE id = $1;

-- name: list_orders
-- $1 owner, $2 status, $3 tier, $4 before seq (each NULL for "any"), $5 limit.
SELECT * FROM orders
WHERE ($1::text IS NULL OR owner = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR tier = $3)
  AND ($4::bigint IS NULL OR seq < $4)
ORDER BY seq DESC
LIMIT $5;

-- name: cancel
UPDATE orders SET status = 'cancelled', finished_at = coalesce($1::timestamptz, now())
WHERE id = $2 AND status = 'queued'
RETURNING *;

-- name: claim
-- The claim rule (domain/scheduling.py), in SQL: ready orders only (queued, available_at
-- reached); overdue ones first, oldest (lowest seq) first; then by priority, then seq. At
-- most $3 rows: the overdue pick takes what it can, the in-turn pick fills the remaining
-- slots. SKIP LOCKED lets concurrent claimers pass each other's rows without waiting, and
-- no row is locked that is not claimed. $2 worker id, $4 lease seconds.
WITH clock AS MATERIALIZED (SELECT coalesce($1::timestamptz, now()) AS now),
overdue AS MATERIALIZED (
    SELECT id FROM orders
    WHERE status = 'queued'
      AND overdue_at <= (SELECT now FROM clock)
      AND available_at <= (SELECT now FROM clock)
    ORDER BY seq
    LIMIT $3
    FOR UPDATE SKIP LOCKED
),
in_turn AS MATERIALIZED (
    SELECT id FROM orders
    WHERE status = 'queued'
      AND available_at <= (SELECT now FROM clock)
      AND (overdue_at IS NULL OR overdue_at > (SELECT now FROM clock))
    ORDER BY priority, seq
    LIMIT (SELECT $3 - count(*) FROM overdue)
    FOR UPDATE SKIP LOCKED
),
claimed AS (
    UPDATE orders o
    SET status = 'running', attempts = o.attempts + 1, started_at = clock.now,
        worker_id = $2, lease_token = gen_random_uuid()::text,
        lease_expires_at = clock.now + make_interval(secs => $4::float8)
    FROM clock
    WHERE o.id IN (SELECT id FROM overdue UNION ALL SELECT id FROM in_turn)
    RETURNING o.*, o.id IN (SELECT id FROM overdue) AS was_overdue
)
SELECT * FROM claimed
ORDER BY was_overdue DESC, CASE WHEN was_overdue THEN 0 ELSE priority END, seq;

-- name: heartbeat
-- Extend the leases still held, given as parallel arrays $2 ids and $3 tokens; rows are
-- locked in id order so concurrent batches cannot deadlock. $4 lease seconds.
WITH held AS (
    SELECT o.id FROM orders o
    JOIN unnest($2::text[], $3::text[]) AS lease(id, token)
      ON o.id = lease.id AND o.lease_token = lease.token
    WHERE o.status = 'running'
    ORDER BY o.id
    FOR UPDATE OF o
)
UPDATE orders o
SET lease_expires_at = coalesce($1::timestamptz, now()) + make_interval(secs => $4::float8)
FROM held WHERE o.id = held.id
RETURNING o.id;

-- name: complete_many
-- Mark succeeded the orders whose lease token still holds: parallel arrays $2 ids,
-- $3 tokens, $4 results (JSON text). Returns the ids completed.
WITH done AS (
    SELECT o.id, outcome.result FROM orders o
    JOIN unnest($2::text[], $3::text[], $4::text[]) AS outcome(id, token, result)
      ON o.id = outcome.id AND o.lease_token = outcome.token
    WHERE o.status = 'running'
    ORDER BY o.id
    FOR UPDATE OF o
)
UPDATE orders o
SET status = 'succeeded', result = done.result::json, error = NULL,
    finished_at = coalesce($1::timestamptz, now()),
    lease_token = NULL, lease_expires_at = NULL
FROM done WHERE o.id = done.id
RETURNING o.id;

-- name: fail
-- A failed run: with $5 (retry delay, seconds) queued again once it has passed, keeping
-- priority and seq; with NULL failed for good. $2 id, $3 token, $4 error.
WITH clock AS (SELECT coalesce($1::timestamptz, now()) AS now)
UPDATE orders o
SET status = CASE WHEN $5::float8 IS NULL THEN 'failed' ELSE 'queued' END,
    error = $4,
    finished_at = CASE WHEN $5::float8 IS NULL THEN clock.now ELSE o.finished_at END,
    available_at = CASE WHEN $5::float8 IS NULL THEN o.available_at
                        ELSE clock.now + make_interval(secs => $5::float8) END,
    lease_token = NULL, lease_expires_at = NULL
FROM clock
WHERE o.id = $2 AND o.lease_token = $3 AND o.status = 'running'
RETURNING o.status;

-- name: release
-- Give leases back ($2 ids, $3 tokens): queued again at once, keeping priority and seq.
WITH held AS (
    SELECT o.id FROM orders o
    JOIN unnest($2::text[], $3::text[]) AS lease(id, token)
      ON o.id = lease.id AND o.lease_token = lease.token
    WHERE o.status = 'running'
    ORDER BY o.id
    FOR UPDATE OF o
)
UPDATE orders o
SET status = 'queued', available_at = coalesce($1::timestamptz, now()),
    lease_token = NULL, lease_expires_at = NULL
FROM held WHERE o.id = held.id
RETURNING o.id;

-- name: rescue_expired
-- Orders whose lease has expired go back to the queue with rescues + 1, or fail once they
-- have been rescued $2 (max_rescues) times. Rows being touched elsewhere are left for the
-- next pass.
WITH clock AS MATERIALIZED (SELECT coalesce($1::timestamptz, now()) AS now),
expired AS (
    SELECT id FROM orders
    WHERE status = 'running' AND lease_expires_at <= (SELECT now FROM clock)
    ORDER BY id
    FOR UPDATE SKIP LOCKED
)
UPDATE orders o
SET rescues = o.rescues + 1,
    status = CASE WHEN o.rescues + 1 > $2 THEN 'failed' ELSE 'queued' END,
    finished_at = CASE WHEN o.rescues + 1 > $2 THEN clock.now ELSE o.finished_at END,
    available_at = CASE WHEN o.rescues + 1 > $2 THEN o.available_at ELSE clock.now END,
    error = CASE WHEN o.rescues + 1 > $2
                 THEN format('worker lost %s times (max_rescues=%s)', o.rescues + 1, $2)
                 ELSE o.error END,
    lease_token = NULL, lease_expires_at = NULL
FROM clock, expired
WHERE o.id = expired.id
RETURNING o.id;

-- name: status_counts
SELECT tier, status, count(*)::int AS orders FROM orders GROUP BY tier, status;

-- name: recent_starts
-- Per tier in $1, the $2 most recently started orders (newest first).
SELECT tiers.tier, recent.created_at, recent.started_at
FROM unnest($1::text[]) AS tiers(tier)
CROSS JOIN LATERAL (
    SELECT o.created_at, o.started_at FROM orders o
    WHERE o.tier = tiers.tier AND o.started_at IS NOT NULL
    ORDER BY o.started_at DESC, o.seq
    LIMIT $2
) AS recent;

-- name: finished_since
SELECT count(*)::int FROM orders
WHERE finished_at >= coalesce($1::timestamptz, now()) - make_interval(secs => $2::float8);

-- name: queued_counts
SELECT tier, count(*)::int AS orders FROM orders WHERE status = 'queued' GROUP BY tier;

-- name: add_key
INSERT INTO api_keys (name, tier, admin, key_hash, created_at, revoked)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (name) DO NOTHING
RETURNING name;

-- name: find_key
SELECT * FROM api_keys WHERE key_hash = $1;

-- name: list_keys
SELECT * FROM api_keys ORDER BY name;

-- name: revoke_key
UPDATE api_keys SET revoked = true WHERE name = $1 AND NOT revoked RETURNING name;
