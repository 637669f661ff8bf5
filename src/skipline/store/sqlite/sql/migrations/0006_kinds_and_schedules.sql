-- Order kinds and scheduled orders (docs/scheduling.md, "Kinds and scheduled orders").
--
-- kind names the handler an order needs; not_before is when a scheduled order becomes due
-- (NULL: at once). A queued order that is not due yet (scheduled, or waiting out a retry
-- backoff) has waiting = 1 and lives in orders_waiting only: the ready indexes hold waiting = 0,
-- so a claim never walks past orders scheduled for later. The claim promotes what came due
-- (waiting 1 -> 0) through orders_waiting first, an index probe when nothing is due.
-- Orders queued before this migration keep waiting = 0: the claim still tests available_at, so
-- one still backing off is not claimed early, it only stays in the ready index. Every index
-- holds the columns its queries test (waiting too), so each read stays within it.
ALTER TABLE orders ADD COLUMN kind TEXT NOT NULL DEFAULT 'default';
ALTER TABLE orders ADD COLUMN not_before REAL;
ALTER TABLE orders ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0;

DROP INDEX orders_queued_by_turn;
CREATE INDEX orders_ready_by_turn
    ON orders (priority, start_tag, seq, available_at, overdue_at, kind, status, waiting)
    WHERE status = 'queued' AND waiting = 0;

DROP INDEX orders_queued_with_deadline_by_seq;
CREATE INDEX orders_ready_with_deadline_by_seq
    ON orders (seq, overdue_at, available_at, kind, status, waiting)
    WHERE status = 'queued' AND waiting = 0 AND overdue_at IS NOT NULL;

DROP INDEX orders_queued_by_deadline;
CREATE INDEX orders_ready_by_deadline
    ON orders (overdue_at, available_at, kind, status, waiting)
    WHERE status = 'queued' AND waiting = 0 AND overdue_at IS NOT NULL;

CREATE INDEX orders_waiting ON orders (available_at, status, waiting)
    WHERE status = 'queued' AND waiting = 1;

