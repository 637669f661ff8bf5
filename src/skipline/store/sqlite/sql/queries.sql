-- Named queries of the SQLite store. Times are REAL seconds since the epoch from the store's
-- clock. Partial indexes are matched only by literal predicates, so statuses are spelled out.

-- name: migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at REAL NOT NULL
)

-- name: migrations_version
SELECT coalesce(max(version), 0) FROM schema_migrations

-- name: migrations_record
INSERT INTO schema_migrations (version, name, applied_at) VALUES (:version, :name, :applied_at)

-- name: insert_order
INSERT INTO orders (
    id, tier, priority, status, attempts, rescues, payload, duration, owner,
    created_at, overdue_at, available_at, idempotency_key, fingerprint, customer, start_tag,
    callback_url, kind, not_before, waiting
) VALUES (
    :id, :tier, :priority, 'queued', 0, 0, :payload, :duration, :owner,
    :now, :overdue_at, :available_at, :idempotency_key, :fingerprint, :customer, :start_tag,
    :callback_url, :kind, :not_before, :available_at > :now
)

-- name: insert_orders
-- insert_order for executemany over tuples (a dict per row cost about 1 µs more), positional:
-- ?1 id, ?2 tier, ?3 priority, ?4 payload, ?5 duration, ?6 owner, ?7 now, ?8 overdue_at,
-- ?9 customer, ?10 start tag, ?11 callback_url, ?12 kind, ?13 not_before, ?14 available_at
-- (when it is due: ?7 unless it is scheduled for later, and then it is waiting).
INSERT INTO orders (
    id, tier, priority, status, attempts, rescues, payload, duration, owner,
    created_at, overdue_at, available_at, idempotency_key, customer, start_tag, callback_url,
    kind, not_before, waiting
) VALUES (?1, ?2, ?3, 'queued', 0, 0, ?4, ?5, ?6, ?7, ?8, ?14, NULL, ?9, ?10, ?11,
          ?12, ?13, ?14 > ?7)

-- name: fair_state
-- A priority's virtual time and a group's finish tag (0 for what was never written), in one
-- statement: what tagging a batch of one group needs.
SELECT coalesce((SELECT virtual_time FROM fair_clocks WHERE priority = :priority), 0),
       coalesce((SELECT finish FROM fair_groups
                 WHERE tier = :tier AND owner = :owner AND customer = :customer), 0)

-- name: fair_group_finish
-- The finish tag of a fair-share group's last accepted order (domain/fairness.py).
SELECT finish FROM fair_groups WHERE tier = :tier AND owner = :owner AND customer = :customer

-- name: save_fair_group
INSERT INTO fair_groups (tier, owner, customer, finish) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (tier, owner, customer) DO UPDATE SET finish = excluded.finish

-- name: fair_clock
-- A priority's virtual time: the largest start tag a claim has handed out.
SELECT virtual_time FROM fair_clocks WHERE priority = :priority

-- name: advance_fair_clock
-- A claim handed out orders of ?1 up to start tag ?2: the virtual time never goes back.
INSERT INTO fair_clocks (priority, virtual_time) VALUES (?1, ?2)
ON CONFLICT (priority) DO UPDATE SET virtual_time = max(virtual_time, excluded.virtual_time)

-- name: last_inserted_seq
-- After inserting n orders in one statement: their seqs are this one and the n - 1 before it
-- (AUTOINCREMENT under the write lock hands out consecutive values).
SELECT last_insert_rowid()

-- name: find_by_idempotency_key
SELECT * FROM orders WHERE owner = :owner AND idempotency_key = :idempotency_key

-- name: get_order
SELECT * FROM orders WHERE id = :id

-- name: list_owner_orders
SELECT * FROM orders
WHERE owner = :owner AND seq < :before_seq
  AND (:status IS NULL OR status = :status) AND (:tier IS NULL OR tier = :tier)
  AND (:customer IS NULL OR customer = :customer) AND (:kind IS NULL OR kind = :kind)
ORDER BY seq DESC
LIMIT :limit

-- name: list_orders
SELECT * FROM orders
WHERE seq < :before_seq
  AND (:status IS NULL OR status = :status) AND (:tier IS NULL OR tier = :tier)
  AND (:customer IS NULL OR customer = :customer) AND (:kind IS NULL OR kind = :kind)
ORDER BY seq DESC
LIMIT :limit

-- name: cancel_order
UPDATE orders SET status = 'cancelled', finished_at = :now
WHERE id = :id AND status = 'queued'
RETURNING *

-- name: order_status
SELECT status FROM orders WHERE id = :id

-- name: requeue_order
-- A failed or cancelled order queued again (Store.requeue): a fresh attempts budget, the
-- overdue clock restarted, how the last run ended appended to its history. SET expressions
-- read the row as it was, so the history entry holds the old status, error and attempts.
UPDATE orders
SET status = 'queued', attempts = 0, rescues = 0, available_at = :now, waiting = 0,
    overdue_at = CASE WHEN overdue_at IS NULL THEN NULL
                      ELSE :now + overdue_at - max(created_at, coalesce(not_before, 0)) END,
    started_at = NULL, finished_at = NULL, result = NULL,
    history = json_insert(coalesce(history, '[]'), '$[#]', json_object(
        'status', status, 'error', error, 'attempts', attempts, 'finished_at', finished_at))
WHERE id = :id AND (status = 'failed' OR status = 'cancelled')
RETURNING *

-- name: promote_due
-- Scheduled and backing-off orders that are due now join the ready indexes (waiting = 0),
-- found through orders_waiting: one index probe when none is due, so a backlog scheduled for
-- later costs a claim nothing. Bounded per claim; the next claim takes the rest.
UPDATE orders SET waiting = 0
WHERE seq IN (
    SELECT seq FROM orders INDEXED BY orders_waiting
    WHERE status = 'queued' AND waiting = 1 AND available_at <= :now
    ORDER BY available_at
    LIMIT 1000
)

-- name: next_due
-- The earliest waiting orders (scheduled or backing off), through orders_waiting; at most
-- :limit (domain.scheduling.DUE_LOOKAHEAD), for an idle worker's next_due.
SELECT available_at, kind FROM orders INDEXED BY orders_waiting
WHERE status = 'queued' AND waiting = 1
ORDER BY available_at
LIMIT :limit

-- name: claim_candidates
-- The claim rule (domain/scheduling.py) for at most :limit ready orders (queued, not waiting,
-- available_at <= now) of the kinds in :kinds (a JSON array; NULL: any kind): overdue ones
-- (overdue_at <= now) first, oldest seq first; then the others by priority, then fair-share
-- start tag, then seq. Each half reads only its own partial index, neither of which holds an
-- order scheduled for later (waiting = 1, see promote_due):
--  * overdue: a probe on the deadline index says whether any ready order is overdue (if none,
--    the half is skipped); if some are, rows with a deadline are walked in seq order, where the
--    oldest are the overdue ones, so only a few rows are read even with 100k overdue;
--  * ordinary: walked in (priority, start_tag, seq) order (orders_ready_by_turn), limited to
--    the slots the overdue half left, so a backlog of overdue orders is never walked past when
--    it fills the claim by itself.
-- A worker serving only some kinds walks past the ready orders of the others (the kind is a
-- column of the index, tested without reading the table).
WITH overdue AS MATERIALIZED (
    SELECT seq FROM orders INDEXED BY orders_ready_with_deadline_by_seq
    WHERE status = 'queued' AND waiting = 0 AND overdue_at IS NOT NULL
      AND overdue_at <= :now AND available_at <= :now
      AND (:kinds IS NULL OR kind IN (SELECT value FROM json_each(:kinds)))
    ORDER BY seq
    LIMIT (SELECT CASE WHEN EXISTS (
        SELECT 1 FROM orders INDEXED BY orders_ready_by_deadline
        WHERE status = 'queued' AND waiting = 0 AND overdue_at IS NOT NULL
          AND overdue_at <= :now AND available_at <= :now
          AND (:kinds IS NULL OR kind IN (SELECT value FROM json_each(:kinds)))
    ) THEN :limit ELSE 0 END)
)
SELECT 0 AS claim_group, 0 AS rank, 0 AS turn, seq FROM overdue
UNION ALL
SELECT * FROM (
    SELECT 1 AS claim_group, priority AS rank, start_tag AS turn, seq
    FROM orders INDEXED BY orders_ready_by_turn
    WHERE status = 'queued' AND waiting = 0 AND available_at <= :now
      AND (overdue_at IS NULL OR overdue_at > :now)
      AND (:kinds IS NULL OR kind IN (SELECT value FROM json_each(:kinds)))
    ORDER BY priority, start_tag, seq
    LIMIT max(0, :limit - (SELECT count(*) FROM overdue))
)
ORDER BY claim_group, rank, turn, seq
LIMIT :limit

-- name: claim_orders
-- Lease the orders picked by claim_candidates (:seqs, a JSON array) in one statement. Each gets
-- the token :token_prefix.<seq>: the prefix is random for every claim, so the token is fresh.
UPDATE orders
SET status = 'running', attempts = attempts + 1, started_at = :now,
    lease_token = :token_prefix || '.' || seq, lease_expires_at = :lease_expires_at,
    worker_id = :worker_id
WHERE seq IN (SELECT value FROM json_each(:seqs)) AND status = 'queued'
RETURNING *

-- name: extend_lease
UPDATE orders SET lease_expires_at = :lease_expires_at
WHERE id = :id AND lease_token = :token AND status = 'running'

-- name: complete_orders
-- Record success for every [id, token, result JSON text] of :done (a JSON array) in one
-- statement, each fenced by its lease token; returns the orders that were still held. The row
-- is found by the seq that ends the token (`prefix.seq`, see claim_orders), a primary-key
-- lookup cheaper than the random id index; a token this store did not hand out yields some
-- seq or none, and then fails the token comparison.
UPDATE orders
SET status = 'succeeded', result = done.result, error = NULL, finished_at = :now,
    lease_token = NULL, lease_expires_at = NULL
FROM (SELECT value ->> 0 AS id, value ->> 1 AS token, value ->> 2 AS result
      FROM json_each(:done)) AS done
WHERE orders.seq = CAST(substr(done.token, instr(done.token, '.') + 1) AS INTEGER)
  AND orders.id = done.id AND orders.lease_token = done.token AND orders.status = 'running'
RETURNING orders.id, orders.tier

-- name: fail_order_for_retry
UPDATE orders
SET status = 'queued', error = :error, available_at = :available_at,
    waiting = :available_at > :now, lease_token = NULL, lease_expires_at = NULL
WHERE id = :id AND lease_token = :token AND status = 'running'
RETURNING tier

-- name: fail_order_for_good
UPDATE orders
SET status = 'failed', error = :error, finished_at = :now,
    lease_token = NULL, lease_expires_at = NULL
WHERE id = :id AND lease_token = :token AND status = 'running'
RETURNING tier

-- name: release_order
UPDATE orders
SET status = 'queued', available_at = :now, waiting = 0, lease_token = NULL,
    lease_expires_at = NULL
WHERE id = :id AND lease_token = :token AND status = 'running'
RETURNING tier

-- name: fail_poisoned_orders
-- An expired lease whose order was already rescued max_rescues times: poison, failed for good.
UPDATE orders
SET status = 'failed', rescues = rescues + 1, finished_at = :now,
    error = 'worker lost ' || (rescues + 1) || ' times (max_rescues=' || :max_rescues || ')',
    lease_token = NULL, lease_expires_at = NULL
WHERE status = 'running' AND lease_expires_at <= :now AND rescues + 1 > :max_rescues
RETURNING tier

-- name: requeue_expired_orders
UPDATE orders
SET status = 'queued', rescues = rescues + 1, available_at = :now, waiting = 0,
    lease_token = NULL, lease_expires_at = NULL
WHERE status = 'running' AND lease_expires_at <= :now
RETURNING tier

-- name: prune_finished
-- Retention: delete at most :limit finished orders whose finished_at is before :cutoff, the
-- longest finished first. They are found through orders_finished, which every finish already
-- maintains for finished_since, so retention adds no index to the hot path, and each pass reads
-- only the entries it deletes (plus one). The status test is the guarantee, not the index: an
-- order that is queued or running is never deleted, whatever its finished_at says.
-- order_counts follows through the orders_uncounted_on_delete trigger.
DELETE FROM orders
WHERE seq IN (
    SELECT seq FROM orders INDEXED BY orders_finished
    WHERE finished_at < :cutoff
      AND (status = 'succeeded' OR status = 'failed' OR status = 'cancelled')
    ORDER BY finished_at
    LIMIT :limit
)

-- name: claim_callbacks
-- At most :limit pending deliveries that are due, put off until :until while one is tried.
UPDATE callbacks SET next_at = :until
WHERE order_id IN (
    SELECT order_id FROM callbacks INDEXED BY callbacks_due
    WHERE status = 'pending' AND next_at <= :now
    ORDER BY next_at
    LIMIT :limit
)
RETURNING *

-- name: record_callback
-- One attempt: delivered (:error NULL), due again at :next_at, or given up (:next_at NULL).
UPDATE callbacks
SET attempts = attempts + 1, last_error = :error,
    status = CASE WHEN :error IS NULL THEN 'delivered'
                  WHEN :next_at IS NULL THEN 'failed' ELSE 'pending' END,
    next_at = coalesce(:next_at, next_at)
WHERE order_id = :order_id

-- name: find_callbacks
SELECT * FROM callbacks WHERE order_id IN (SELECT value FROM json_each(:ids))

-- name: count_orders
-- :n more orders of :tier are in :status (n may be negative).
INSERT INTO order_counts (tier, status, n) VALUES (:tier, :status, :n)
ON CONFLICT (tier, status) DO UPDATE SET n = n + excluded.n

-- name: count_moved_orders
-- :n orders of :tier went from :before to :after.
INSERT INTO order_counts (tier, status, n) VALUES (:tier, :before, 0 - :n), (:tier, :after, :n)
ON CONFLICT (tier, status) DO UPDATE SET n = n + excluded.n

-- name: queued_counts
SELECT tier, n FROM order_counts WHERE status = 'queued' AND n > 0

-- name: status_counts
SELECT tier, status, n FROM order_counts WHERE n > 0

-- name: recent_waits
-- A scheduled order waits from its not_before, not from its acceptance.
SELECT started_at - max(created_at, coalesce(not_before, 0)) AS wait FROM orders
WHERE tier = :tier AND started_at IS NOT NULL
ORDER BY started_at DESC, seq
LIMIT :limit

-- name: kind_counts
-- Orders per kind and status: counted from the orders themselves (order_counts is kept per
-- tier), on the read connection and behind the stats cache.
SELECT kind, status, count(*) AS n FROM orders GROUP BY kind, status

-- name: kind_recent_waits
SELECT started_at - max(created_at, coalesce(not_before, 0)) AS wait FROM orders
WHERE kind = :kind AND started_at IS NOT NULL
ORDER BY started_at DESC, seq
LIMIT :limit

-- name: finished_since
SELECT count(*) FROM orders WHERE finished_at IS NOT NULL AND finished_at >= :since

-- name: queued_health
-- Due queued orders per tier and kind, through the ready index (orders_ready_by_turn: orders
-- scheduled for later or backing off are not in it, and not waiting for a worker yet); an
-- order's wait counts from when it became due, as for started orders.
SELECT tier, kind, count(*) AS ready,
       :now - min(max(created_at, coalesce(not_before, 0))) AS oldest_age,
       sum(overdue_at IS NOT NULL AND overdue_at <= :now) AS overdue
FROM orders WHERE status = 'queued' AND waiting = 0 AND available_at <= :now
GROUP BY tier, kind

-- name: longest_waiting
-- The :limit longest-waiting due orders of one tier, longest first: one pass over the ready
-- index keeping the top :limit (a window over every tier and kind at once, as PostgreSQL
-- does, sorted the whole backlog twice: 361 ms against about 35 ms a tier at 100,000 queued).
SELECT :now - max(created_at, coalesce(not_before, 0)) AS age FROM orders
WHERE status = 'queued' AND waiting = 0 AND available_at <= :now AND tier = :name
ORDER BY max(created_at, coalesce(not_before, 0)), seq
LIMIT :limit

-- name: longest_waiting_of_kind
SELECT :now - max(created_at, coalesce(not_before, 0)) AS age FROM orders
WHERE status = 'queued' AND waiting = 0 AND available_at <= :now AND kind = :name
ORDER BY max(created_at, coalesce(not_before, 0)), seq
LIMIT :limit

-- name: busiest_groups
-- Due and running orders, each through its own partial index, grouped by fair-share group.
SELECT tier, owner, customer,
       sum(status = 'queued') AS ready, sum(status = 'running') AS running,
       :now - min(CASE WHEN status = 'queued' THEN max(created_at, coalesce(not_before, 0))
                  END) AS oldest_age
FROM (SELECT tier, owner, customer, status, created_at, not_before FROM orders
      WHERE status = 'queued' AND waiting = 0 AND available_at <= :now
      UNION ALL
      SELECT tier, owner, customer, status, created_at, not_before FROM orders
      WHERE status = 'running')
GROUP BY tier, owner, customer
ORDER BY ready DESC, running DESC, tier, owner, customer
LIMIT :limit

-- name: finished_by_status
SELECT status, count(*) AS n FROM orders
WHERE finished_at IS NOT NULL AND finished_at >= :since AND status IN ('succeeded', 'failed')
GROUP BY status

-- name: ping
SELECT count(*) FROM schema_migrations

-- name: insert_key
INSERT INTO api_keys (name, tier, admin, key_hash, created_at, revoked, customers, weight)
VALUES (:name, :tier, :admin, :key_hash, :created_at, :revoked, :customers, :weight)

-- name: find_key
SELECT * FROM api_keys WHERE key_hash = :key_hash ORDER BY rowid LIMIT 1

-- name: list_keys
SELECT * FROM api_keys ORDER BY name

-- name: revoke_key
UPDATE api_keys SET revoked = 1 WHERE name = :name AND revoked = 0

-- name: register_worker
INSERT OR REPLACE INTO workers (
    id, host, pid, kinds, slots_busy, slots_total, started_at, last_heartbeat, expires_at
) VALUES (:id, :host, :pid, :kinds, 0, :slots_total, :now, :now, :expires_at)

-- name: beat_worker
UPDATE workers SET slots_busy = :slots_busy, last_heartbeat = :now, expires_at = :expires_at
WHERE id = :id AND expires_at > :now

-- name: remove_worker
DELETE FROM workers WHERE id = :id

-- name: live_workers
SELECT * FROM workers WHERE expires_at > :now ORDER BY started_at, id

-- name: prune_workers
DELETE FROM workers WHERE expires_at <= :now

-- name: any_expired_worker
SELECT 1 FROM workers WHERE expires_at <= :now LIMIT 1

-- name: final_among
-- Which of the ids in the JSON array :ids are final (a finish another process committed).
SELECT id FROM orders
WHERE id IN (SELECT value FROM json_each(:ids))
  AND (status = 'succeeded' OR status = 'failed' OR status = 'cancelled')
