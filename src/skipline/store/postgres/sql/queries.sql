-- Named queries of the PostgreSQL store (loaded once per store by skipline.store.queries).
--
-- Time: every query that needs "now" uses the database's now(), so leases, backoff and overdue
-- times are measured on the one clock that every process shares, whatever their own clocks say.
--
-- Wake-ups: each statement that makes orders queued (submit, release, retry, rescue) sends
-- one NOTIFY on channel 'skipline_ready' (postgres/listener.py, WAKE_CHANNEL) through its `wake`
-- CTE, only when it queued something. NOTIFY is transactional: listeners hear it on commit.
--
-- Finishes: each statement that makes orders final (complete, fail for good, cancel, poison)
-- sends their ids, comma-separated, on channel 'skipline_finished' through its `finished` CTE
-- (postgres/listener.py, FINISH_CHANNEL), 150 ids per notification (a payload holds at most
-- 8000 bytes; an id is 45 characters), so `wait` requests in every process wake up. The CTE is
-- forced by an always-true test in the final WHERE (`>= 0`), evaluated once.

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

-- name: backend_identity
-- The server process behind this connection, read once when it opens (postgres/doubt.py).
SELECT pg_backend_pid() AS pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid();

-- name: end_backend
-- Fencing a commit in doubt (postgres/doubt.py): if server process $1, started at $2, is still
-- there it is told to terminate and a row comes back (ask again shortly); no row: it is gone,
-- and its transaction is over, committed or rolled back.
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND backend_start = $2;

-- name: insert_orders
-- Accept a batch of concurrent submissions in one statement and one commit (group commit).
-- Parallel arrays: $1 ids, $2 tiers, $3 priorities, $4 payloads (JSON text), $5 durations,
-- $6 owners, $7 idempotency keys, $8 max_wait seconds (NULL: never overdue), $9 request
-- fingerprints (NULL without a key), $10 customers ('' for none), $11 whether the tier is
-- fifo, $12 callback URLs, $13 the steps ahead of each order in its fair-share group within
-- the batch, $14 the steps of that group's whole batch (domain/fairness.py, batch_turns),
-- $15 when each is due (not_before; NULL: at once), $16 kinds; ord keeps the callers' order
-- so seq follows arrival. An order whose (owner, idempotency key) was used already is skipped: it returns no row (and takes no turn when it is alone in its batch, as
-- a client's retry is; beside others of its group it leaves a gap of one turn). Only what
-- the database decided comes back (id to match, seq, the times, the start tag); the caller
-- has the rest, and decoding it cost a few µs per order.
-- A replay is found by a scalar subquery per keyed order, which the planner runs as an
-- index lookup whatever it thinks of the batch's size (as a join, a generic plan hashed the
-- batch against a scan of every order).
-- Fair share: each fair-share group of the batch (a fifo tier is one) has its row in
-- fair_groups upserted once, in key order so that concurrent batches lock rows in the same
-- order and cannot deadlock. Its first order starts at max(V, F) (V: the priority's virtual
-- time, read without a lock; F: the group's finish tag), so the new F is max(V, F) + the
-- group's steps, and each order starts at the new F - the group's steps + its steps ahead.
WITH batch AS (
    SELECT b.*,
           CASE WHEN b.fifo THEN '' ELSE b.owner END AS group_owner,
           CASE WHEN b.fifo THEN '' ELSE b.customer END AS group_customer
    FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::float8[], $6::text[],
                $7::text[], $8::float8[], $9::text[], $10::text[], $11::bool[], $12::text[],
                $13::bigint[], $14::bigint[], $15::timestamptz[], $16::text[]) WITH ORDINALITY
         AS b(id, tier, priority, payload, duration, owner, idempotency_key, max_wait,
              fingerprint, customer, fifo, callback_url, ahead, group_steps, not_before, kind,
              ord)
    WHERE b.idempotency_key IS NULL OR (
        SELECT o.id FROM orders o
        WHERE o.owner = b.owner AND o.idempotency_key = b.idempotency_key) IS NULL
),
groups AS (
    SELECT tier, group_owner, group_customer, min(priority) AS priority,
           min(group_steps) AS steps
    FROM batch
    GROUP BY tier, group_owner, group_customer
),
finishes AS (
    INSERT INTO fair_groups AS g (tier, owner, customer, finish)
    SELECT gr.tier, gr.group_owner, gr.group_customer,
           coalesce((SELECT c.virtual_time FROM fair_clocks c WHERE c.priority = gr.priority),
                    0) + gr.steps
    FROM groups gr
    ORDER BY gr.tier, gr.group_owner, gr.group_customer
    ON CONFLICT (tier, owner, customer) DO UPDATE
    SET finish = greatest(excluded.finish, g.finish + (
        SELECT gr.steps FROM groups gr
        WHERE gr.tier = excluded.tier AND gr.group_owner = excluded.owner
          AND gr.group_customer = excluded.customer))
    RETURNING g.tier, g.owner, g.customer, g.finish
),
inserted AS (
    INSERT INTO orders (id, tier, priority, payload, duration, owner, idempotency_key,
                        fingerprint, created_at, overdue_at, available_at, customer, start_tag,
                        callback_url, kind, not_before, waiting)
    SELECT b.id, b.tier, b.priority, b.payload::json, b.duration, b.owner, b.idempotency_key,
           b.fingerprint, now(),
           greatest(now(), b.not_before) + make_interval(secs => b.max_wait),
           greatest(now(), b.not_before), b.customer,
           f.finish - b.group_steps + b.ahead, b.callback_url, b.kind, b.not_before,
           coalesce(b.not_before > now(), false)
    FROM batch b
    JOIN finishes f
      ON f.tier = b.tier AND f.owner = b.group_owner AND f.customer = b.group_customer
    ORDER BY b.ord
    ON CONFLICT (owner, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, seq, created_at, overdue_at, start_tag, available_at
),
wake AS MATERIALIZED (
    SELECT pg_notify('skipline_ready', '') FROM (SELECT FROM inserted LIMIT 1) AS any_row
)
SELECT inserted.* FROM inserted LEFT JOIN wake ON true;

-- name: find_submitted
-- The orders a batch of submissions made or found: by id ($1), and by (owner, idempotency
-- key) in the parallel arrays $2, $3 (a NULL key matches nothing). An order may come twice.
SELECT * FROM orders WHERE id = ANY($1::text[])
UNION ALL
SELECT o.* FROM orders o
JOIN unnest($2::text[], $3::text[]) AS submitted(owner, idempotency_key)
  ON o.owner = submitted.owner AND o.idempotency_key = submitted.idempotency_key;

-- name: get_orders
-- The gets of a moment (and the looks of the `wait` requests), in one statement
-- (postgres/store.py).
SELECT * FROM orders WHERE id = ANY($1::text[]);

-- name: list_orders
-- $1 owner, $2 status, $3 tier, $4 before seq, $6 customer, $7 kind (each NULL for "any"),
-- $5 limit.
SELECT * FROM orders
WHERE ($1::text IS NULL OR owner = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR tier = $3)
  AND ($4::bigint IS NULL OR seq < $4)
  AND ($6::text IS NULL OR customer = $6)
  AND ($7::text IS NULL OR kind = $7)
ORDER BY seq DESC
LIMIT $5;

-- name: list_owner_orders
-- The same for one API key's orders ($1 is never ''), through orders_owner.
SELECT * FROM orders
WHERE owner = $1 AND owner <> ''
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR tier = $3)
  AND ($4::bigint IS NULL OR seq < $4)
  AND ($6::text IS NULL OR customer = $6)
  AND ($7::text IS NULL OR kind = $7)
ORDER BY owner DESC, seq DESC
LIMIT $5;

-- name: cancel_order
WITH cancelled AS (
    UPDATE orders SET status = 'cancelled', finished_at = now()
    WHERE id = $1 AND status = 'queued'
    RETURNING *
),
finished AS MATERIALIZED (
    SELECT pg_notify('skipline_finished', $1) FROM (SELECT FROM cancelled LIMIT 1) AS any_row
)
SELECT cancelled.* FROM cancelled LEFT JOIN finished ON true;

-- name: requeue_order
-- A failed or cancelled order queued again (Store.requeue): a fresh attempts budget, the
-- overdue clock restarted, how the last run ended appended to its history (SET expressions
-- read the row as it was). Returns the order, and wakes idle workers.
WITH requeued AS (
    UPDATE orders
    SET status = 'queued', attempts = 0, rescues = 0, available_at = now(), waiting = false,
        overdue_at = now() + (overdue_at - greatest(created_at, not_before)),
        started_at = NULL, finished_at = NULL, result = NULL,
        history = (coalesce(history::jsonb, '[]'::jsonb) || jsonb_build_array(jsonb_build_object(
            'status', status, 'error', error, 'attempts', attempts,
            'finished_at', extract(epoch FROM finished_at)::float8)))::json
    WHERE id = $1 AND status IN ('failed', 'cancelled')
    RETURNING *
),
wake AS MATERIALIZED (
    SELECT pg_notify('skipline_ready', '') FROM (SELECT FROM requeued LIMIT 1) AS any_row
)
SELECT requeued.* FROM requeued LEFT JOIN wake ON true;

-- name: claim_callbacks
-- At most $1 pending deliveries that are due, oldest due first, put off by $2 seconds while
-- one process tries them (SKIP LOCKED: the delivery services of several processes share).
WITH due AS (
    SELECT order_id FROM callbacks
    WHERE status = 'pending' AND next_at <= now()
    ORDER BY next_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE callbacks c SET next_at = now() + make_interval(secs => $2::float8)
FROM due WHERE c.order_id = due.order_id
RETURNING c.*;

-- name: record_callback
-- One attempt at $1's delivery: delivered ($2 error NULL), due again after $3 seconds, or
-- given up ($3 NULL).
UPDATE callbacks
SET attempts = attempts + 1, last_error = $2,
    status = CASE WHEN $2::text IS NULL THEN 'delivered'
                  WHEN $3::float8 IS NULL THEN 'failed' ELSE 'pending' END,
    next_at = CASE WHEN $3::float8 IS NULL THEN next_at
                   ELSE now() + make_interval(secs => $3::float8) END
WHERE order_id = $1;

-- name: find_callbacks
SELECT * FROM callbacks WHERE order_id = ANY($1::text[]);

-- name: promote_due
-- Scheduled and backing-off orders that are due now join orders_ready (waiting = false),
-- found through orders_waiting: one index probe when none is due, so a backlog scheduled for
-- later costs a claim nothing. Run just before each claim, in its own statement (a CTE of the
-- claim would not see its own update); bounded, and rows another claimer is promoting are
-- left to it.
WITH due AS (
    SELECT id FROM orders
    WHERE status = 'queued' AND waiting AND available_at <= now()
    ORDER BY available_at
    LIMIT 1000
    FOR UPDATE SKIP LOCKED
),
promoted AS (
    UPDATE orders o SET waiting = false
    FROM unnest(ARRAY(SELECT id FROM due)) AS promoted(id)  -- sized small (see claim)
    WHERE o.id = promoted.id
    RETURNING 1
)
SELECT count(*)::int FROM promoted;

-- name: claim
-- The claim rule (domain/scheduling.py), in SQL: ready orders only (queued, not waiting,
-- available_at reached) of the kinds in $4 (NULL: any kind); overdue ones first, oldest (lowest seq) first; then by priority, then fair-share
-- start tag, then seq. At most $2 rows: the overdue pick takes what it can, the in-turn pick
-- fills the remaining slots. SKIP LOCKED lets concurrent claimers pass each other's rows
-- without waiting, and no row is locked that is not claimed. $1 worker id, $3 lease seconds.
-- The claim moves each claimed priority's virtual time (fair_clocks) up to the largest start
-- tag it handed out, unless another claim is moving it right now (SKIP LOCKED again: claims
-- never wait for each other; the next one catches up). A priority's first claim creates its
-- row.
-- Plan notes: now() appears literally (not as a parameter) so the planner can estimate how
-- many orders are overdue and find them through orders_ready_overdue rather than walk the
-- queue; the claimed ids are joined as unnest(ARRAY(...)), which the planner sizes as a
-- small set (it cannot size the second LIMIT, and would otherwise scan the whole table to
-- hash-join it, or test every row against the whole array).
WITH overdue AS MATERIALIZED (
    SELECT id FROM orders
    WHERE status = 'queued' AND NOT waiting AND overdue_at <= now() AND available_at <= now()
      AND ($4::text[] IS NULL OR kind = ANY($4::text[]))
    ORDER BY seq
    LIMIT $2
    FOR UPDATE SKIP LOCKED
),
in_turn AS MATERIALIZED (
    SELECT id FROM orders
    WHERE status = 'queued' AND NOT waiting AND available_at <= now()
      AND (overdue_at IS NULL OR overdue_at > now())
      AND ($4::text[] IS NULL OR kind = ANY($4::text[]))
    ORDER BY priority, start_tag, seq
    LIMIT (SELECT $2 - count(*) FROM overdue)
    FOR UPDATE SKIP LOCKED
),
claimed AS (
    UPDATE orders o
    SET status = 'running', attempts = o.attempts + 1, started_at = now(),
        worker_id = $1, lease_token = gen_random_uuid()::text,
        lease_expires_at = now() + make_interval(secs => $3::float8)
    FROM unnest(ARRAY(SELECT id FROM overdue UNION ALL SELECT id FROM in_turn)) AS picked(id)
    WHERE o.id = picked.id
    RETURNING o.*, o.id IN (SELECT id FROM overdue) AS was_overdue
),
tops AS (
    SELECT priority, max(start_tag) AS top FROM claimed GROUP BY priority
),
first_clocks AS (  -- the NOT EXISTS probe spares the usual claim a speculative insertion
    INSERT INTO fair_clocks (priority, virtual_time)
    SELECT priority, top FROM tops
    WHERE NOT EXISTS (SELECT 1 FROM fair_clocks c WHERE c.priority = tops.priority)
    ON CONFLICT (priority) DO NOTHING
),
free_clocks AS (
    SELECT c.priority FROM fair_clocks c JOIN tops ON tops.priority = c.priority
    WHERE c.virtual_time < tops.top
    FOR UPDATE OF c SKIP LOCKED
),
advanced AS (
    UPDATE fair_clocks c SET virtual_time = tops.top
    FROM tops JOIN free_clocks USING (priority)
    WHERE c.priority = tops.priority AND c.virtual_time < tops.top
)
SELECT * FROM claimed
ORDER BY was_overdue DESC, CASE WHEN was_overdue THEN 0 ELSE priority END,
         CASE WHEN was_overdue THEN 0 ELSE start_tag END, seq;

-- name: heartbeat
-- Extend the leases still held, given as parallel arrays $1 ids and $2 tokens; rows are
-- locked in id order so concurrent batches cannot deadlock. $3 lease seconds. The arrays go
-- through ARRAY(SELECT unnest(...)) so the planner sizes them as a small set and looks each
-- order up by its primary key (see complete_orders).
WITH held AS (
    SELECT o.id
    FROM unnest(ARRAY(SELECT unnest($1::text[])), ARRAY(SELECT unnest($2::text[])))
         AS lease(id, token)
    JOIN orders o ON o.id = lease.id AND o.lease_token = lease.token
    WHERE o.status = 'running'
    ORDER BY o.id
    FOR UPDATE OF o
)
UPDATE orders o
SET lease_expires_at = now() + make_interval(secs => $3::float8)
FROM held WHERE o.id = held.id
RETURNING o.id;

-- name: complete_orders
-- Mark succeeded the orders whose lease token still holds: parallel arrays $1 ids,
-- $2 tokens, $3 results (JSON text). Returns the ids completed. Plan note: given the arrays
-- as they are, the planner knows their length and, while the table is small or its
-- statistics stale, hash-joins them against a scan of every running row: of the table, or of
-- orders_leases, which keeps an entry for every lease until vacuum removes it, so each batch
-- read all the leases handed out since (measured on 10,000 orders: 2.9 to 4.6 ms per batch
-- of 200, against 2.4 ms by key). Through ARRAY(SELECT unnest(...)) they are sized as a
-- small set, so each order is looked up by its primary key whatever the table's size or state.
WITH done AS (
    SELECT o.id, outcome.result
    FROM unnest(ARRAY(SELECT unnest($1::text[])), ARRAY(SELECT unnest($2::text[])),
                ARRAY(SELECT unnest($3::text[]))) AS outcome(id, token, result)
    JOIN orders o ON o.id = outcome.id AND o.lease_token = outcome.token
    WHERE o.status = 'running'
    ORDER BY o.id
    FOR UPDATE OF o
),
completed AS (
    UPDATE orders o
    SET status = 'succeeded', result = done.result::json, error = NULL, finished_at = now(),
        lease_token = NULL, lease_expires_at = NULL
    FROM done WHERE o.id = done.id
    RETURNING o.id
),
finished AS MATERIALIZED (
    SELECT pg_notify('skipline_finished', string_agg(id, ','))
    FROM (SELECT id, (row_number() OVER ()) / 150 AS chunk FROM completed) AS ids
    GROUP BY chunk
)
SELECT id FROM completed WHERE (SELECT count(*) FROM finished) >= 0;

-- name: completion_states
-- Settling completions in doubt: for each order $1 completed with lease token $2, whether it
-- has succeeded, and whether it is still running under that token (the completion did not
-- land).
SELECT o.id, o.status = 'succeeded' AS succeeded,
       o.status = 'running' AND o.lease_token IS NOT DISTINCT FROM c.token AS still_held
FROM orders o
JOIN unnest($1::text[], $2::text[]) AS c(id, token) ON o.id = c.id;

-- name: fail
-- A failed run: with $4 (retry delay, seconds) queued again once it has passed, keeping
-- priority and seq; with NULL failed for good. $1 id, $2 token, $3 error.
WITH failed AS (
    UPDATE orders o
    SET status = CASE WHEN $4::float8 IS NULL THEN 'failed' ELSE 'queued' END,
        error = $3,
        finished_at = CASE WHEN $4::float8 IS NULL THEN now() ELSE o.finished_at END,
        available_at = CASE WHEN $4::float8 IS NULL THEN o.available_at
                            ELSE now() + make_interval(secs => $4::float8) END,
        waiting = coalesce($4::float8 > 0, false),
        lease_token = NULL, lease_expires_at = NULL
    WHERE o.id = $1 AND o.lease_token = $2 AND o.status = 'running'
    RETURNING o.status
),
wake AS MATERIALIZED (
    SELECT pg_notify('skipline_ready', '')
    FROM (SELECT FROM failed WHERE status = 'queued' LIMIT 1) AS any_row
),
finished AS MATERIALIZED (
    SELECT pg_notify('skipline_finished', $1)
    FROM (SELECT FROM failed WHERE status = 'failed' LIMIT 1) AS any_row
)
SELECT failed.status FROM failed LEFT JOIN wake ON true LEFT JOIN finished ON true;

-- name: release
-- Give leases back ($1 ids, $2 tokens): queued again at once, keeping priority and seq.
WITH held AS (
    SELECT o.id FROM orders o
    JOIN unnest($1::text[], $2::text[]) AS lease(id, token)
      ON o.id = lease.id AND o.lease_token = lease.token
    WHERE o.status = 'running'
    ORDER BY o.id
    FOR UPDATE OF o
),
released AS (
    UPDATE orders o
    SET status = 'queued', available_at = now(), waiting = false, lease_token = NULL,
        lease_expires_at = NULL
    FROM held WHERE o.id = held.id
    RETURNING o.id
),
wake AS MATERIALIZED (
    SELECT pg_notify('skipline_ready', '') FROM (SELECT FROM released LIMIT 1) AS any_row
)
SELECT released.id FROM released LEFT JOIN wake ON true;

-- name: rescue_expired
-- Orders whose lease has expired go back to the queue with rescues + 1, or fail once they
-- have been rescued $1 (max_rescues) times. Rows being touched elsewhere are left for the
-- next pass.
WITH expired AS (
    SELECT id FROM orders
    WHERE status = 'running' AND lease_expires_at <= now()
    ORDER BY id
    FOR UPDATE SKIP LOCKED
),
rescued AS (
    UPDATE orders o
    SET rescues = o.rescues + 1,
        status = CASE WHEN o.rescues + 1 > $1 THEN 'failed' ELSE 'queued' END,
        finished_at = CASE WHEN o.rescues + 1 > $1 THEN now() ELSE o.finished_at END,
        available_at = CASE WHEN o.rescues + 1 > $1 THEN o.available_at ELSE now() END,
        waiting = false,
        error = CASE WHEN o.rescues + 1 > $1
                     THEN format('worker lost %s times (max_rescues=%s)', o.rescues + 1, $1)
                     ELSE o.error END,
        lease_token = NULL, lease_expires_at = NULL
    FROM expired
    WHERE o.id = expired.id
    RETURNING o.id, o.status
),
wake AS MATERIALIZED (
    SELECT pg_notify('skipline_ready', '')
    FROM (SELECT FROM rescued WHERE status = 'queued' LIMIT 1) AS any_row
),
finished AS MATERIALIZED (
    SELECT pg_notify('skipline_finished', string_agg(id, ','))
    FROM (SELECT id, (row_number() OVER ()) / 150 AS chunk FROM rescued
          WHERE status = 'failed') AS ids
    GROUP BY chunk
)
SELECT rescued.id FROM rescued LEFT JOIN wake ON true
WHERE (SELECT count(*) FROM finished) >= 0;

-- name: prune_finished
-- Retention: delete at most $2 finished orders that finished more than $1 seconds ago by the
-- database clock, the longest finished first; returns how many. They are found through
-- orders_finished, which every finish already maintains for finished_since, so retention adds
-- no index to the hot path and reads only the entries it deletes. The status test is the
-- guarantee that no queued or running order is deleted. SKIP LOCKED lets the pruners of
-- several processes share the work without waiting for each other. now() is written literally
-- so the planner compares finished_at with a known moment (see claim).
WITH doomed AS (
    SELECT id FROM orders
    WHERE finished_at < now() - make_interval(secs => $1::float8)
      AND status IN ('succeeded', 'failed', 'cancelled')
    ORDER BY finished_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
),
deleted AS (
    DELETE FROM orders o USING doomed WHERE o.id = doomed.id
    RETURNING 1
)
SELECT count(*)::int FROM deleted;

-- name: tier_kind_counts
-- Orders per tier, kind and status in one scan: stats() folds it into both breakdowns.
SELECT tier, kind, status, count(*)::int AS orders FROM orders GROUP BY tier, kind, status;

-- name: recent_starts
-- Per tier in $1, the $2 most recently started orders (newest first), with when each was due
-- (a scheduled order waits from its not_before; greatest ignores a NULL).
SELECT tiers.tier, recent.due_at, recent.started_at
FROM unnest($1::text[]) AS tiers(tier)
CROSS JOIN LATERAL (
    SELECT greatest(o.created_at, o.not_before) AS due_at, o.started_at FROM orders o
    WHERE o.tier = tiers.tier AND o.started_at IS NOT NULL
    ORDER BY o.started_at DESC, o.seq
    LIMIT $2
) AS recent;

-- name: finished_since
SELECT count(*)::int FROM orders
WHERE finished_at >= now() - make_interval(secs => $1::float8);

-- name: queued_health
-- Due queued orders per tier and kind, through orders_ready (orders scheduled for later or
-- backing off are not in it, and not waiting for a worker yet); an order's wait counts from
-- when it became due, as for started orders. Ages on the database's clock.
SELECT tier, kind, count(*)::int AS ready,
       extract(epoch FROM now() - min(greatest(created_at, not_before)))::float8 AS oldest_age,
       (count(*) FILTER (WHERE overdue_at <= now()))::int AS overdue
FROM orders WHERE status = 'queued' AND NOT waiting AND available_at <= now()
GROUP BY tier, kind;

-- name: longest_waiting
-- The $1 longest-waiting due orders of each tier and of each kind, with their ranks.
SELECT tier, kind, age, by_tier, by_kind FROM (
    SELECT tier, kind, extract(epoch FROM now() - greatest(created_at, not_before))::float8 AS age,
           row_number() OVER (PARTITION BY tier
                              ORDER BY greatest(created_at, not_before), seq) AS by_tier,
           row_number() OVER (PARTITION BY kind
                              ORDER BY greatest(created_at, not_before), seq) AS by_kind
    FROM orders WHERE status = 'queued' AND NOT waiting AND available_at <= now()
) AS ranked
WHERE by_tier <= $1 OR by_kind <= $1;

-- name: busiest_groups
SELECT tier, owner, customer,
       (count(*) FILTER (WHERE status = 'queued'))::int AS ready,
       (count(*) FILTER (WHERE status = 'running'))::int AS running,
       extract(epoch FROM now() - min(greatest(created_at, not_before))
                                  FILTER (WHERE status = 'queued'))::float8 AS oldest_age
FROM orders
WHERE (status = 'queued' AND NOT waiting AND available_at <= now()) OR status = 'running'
GROUP BY tier, owner, customer
ORDER BY ready DESC, running DESC, tier, owner, customer
LIMIT $1;

-- name: finished_by_status
SELECT status, count(*)::int AS orders FROM orders
WHERE finished_at >= now() - make_interval(secs => $1::float8)
  AND status IN ('succeeded', 'failed')
GROUP BY status;

-- name: kind_recent_starts
-- Per kind in $1, the $2 most recently started orders (newest first), as recent_starts.
SELECT kinds.kind, recent.due_at, recent.started_at
FROM unnest($1::text[]) AS kinds(kind)
CROSS JOIN LATERAL (
    SELECT greatest(o.created_at, o.not_before) AS due_at, o.started_at FROM orders o
    WHERE o.kind = kinds.kind AND o.started_at IS NOT NULL
    ORDER BY o.started_at DESC, o.seq
    LIMIT $2
) AS recent;

-- name: next_due
-- Seconds until each of the earliest waiting orders (scheduled or backing off) is due, on
-- the database clock, through orders_waiting; at most $1 (domain.scheduling.DUE_LOOKAHEAD),
-- for an idle worker's next_due.
SELECT extract(epoch FROM available_at - now())::float8 AS due_in, kind FROM orders
WHERE status = 'queued' AND waiting
ORDER BY available_at
LIMIT $1;

-- name: queued_counts
-- Queued orders per tier: the ready ones and the waiting ones, each through its own index
-- (both include the tier), never the finished orders.
SELECT tier, count(*)::int AS orders FROM (
    SELECT tier FROM orders WHERE status = 'queued' AND NOT waiting
    UNION ALL
    SELECT tier FROM orders WHERE status = 'queued' AND waiting
) AS queued GROUP BY tier;

-- name: insert_key
INSERT INTO api_keys (name, tier, admin, key_hash, created_at, revoked, customers, weight)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (name) DO NOTHING
RETURNING name;

-- name: fair_position
-- Priority $1's virtual time and group ($2 tier, $3 owner, $4 customer)'s finish tag.
SELECT coalesce((SELECT virtual_time FROM fair_clocks WHERE priority = $1), 0) AS virtual_time,
       coalesce((SELECT finish FROM fair_groups
                 WHERE tier = $2 AND owner = $3 AND customer = $4), 0) AS finish;

-- name: find_key
SELECT * FROM api_keys WHERE key_hash = $1;

-- name: list_keys
SELECT * FROM api_keys ORDER BY name;

-- name: revoke_key
UPDATE api_keys SET revoked = true WHERE name = $1 AND NOT revoked RETURNING name;

-- name: register_worker
-- Sign a pool in ($1 id, $2 host, $3 pid, $4 kinds, $5 slots total), replacing any row with its
-- id; alive for $6 seconds by the database clock unless it beats again.
INSERT INTO workers (
    id, host, pid, kinds, slots_busy, slots_total, started_at, last_heartbeat, expires_at
) VALUES ($1, $2, $3, $4::text[], 0, $5, now(), now(), now() + make_interval(secs => $6::float8))
ON CONFLICT (id) DO UPDATE
SET host = excluded.host, pid = excluded.pid, kinds = excluded.kinds, slots_busy = 0,
    slots_total = excluded.slots_total, started_at = excluded.started_at,
    last_heartbeat = excluded.last_heartbeat, expires_at = excluded.expires_at;

-- name: beat_worker
-- A pool's heartbeat ($1 id, $2 slots busy, $3 seconds alive from now); no row while expired.
UPDATE workers
SET slots_busy = $2, last_heartbeat = now(), expires_at = now() + make_interval(secs => $3::float8)
WHERE id = $1 AND expires_at > now()
RETURNING id;

-- name: remove_worker
DELETE FROM workers WHERE id = $1 RETURNING id;

-- name: live_workers
SELECT * FROM workers WHERE expires_at > now() ORDER BY started_at, id;

-- name: prune_workers
WITH gone AS (DELETE FROM workers WHERE expires_at <= now() RETURNING 1)
SELECT count(*)::integer FROM gone;
