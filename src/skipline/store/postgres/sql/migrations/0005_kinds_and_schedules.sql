-- Order kinds and scheduled orders (docs/scheduling.md, "Kinds and scheduled orders").
--
-- kind names the handler an order needs; not_before is when a scheduled order becomes due
-- (NULL: at once). A queued order that is not due yet (scheduled, or waiting out a retry
-- backoff) has waiting = true and lives in orders_waiting only: orders_ready and
-- orders_ready_overdue hold the others, so a claim never walks past orders scheduled for later.
-- Each claim first promotes what came due (promote_due) through orders_waiting, an index probe
-- when nothing is due. Orders queued before this migration keep waiting = false: the claim
-- still tests available_at, so one still backing off is not claimed early.
ALTER TABLE orders ADD COLUMN kind text COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE orders ADD COLUMN not_before timestamptz;
ALTER TABLE orders ADD COLUMN waiting boolean NOT NULL DEFAULT false;

DROP INDEX orders_ready;
CREATE INDEX orders_ready ON orders (priority, start_tag, seq) INCLUDE (tier, kind)
    WHERE status = 'queued' AND NOT waiting;

DROP INDEX orders_ready_overdue;
CREATE INDEX orders_ready_overdue ON orders (overdue_at, seq)
    WHERE status = 'queued' AND NOT waiting AND overdue_at IS NOT NULL;

-- Queued orders not due yet, by when they are; tier included for queued_counts.
CREATE INDEX orders_waiting ON orders (available_at) INCLUDE (tier)
    WHERE status = 'queued' AND waiting;
