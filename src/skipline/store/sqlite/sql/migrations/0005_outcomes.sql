-- Outcomes back to the caller: where to POST an order's outcome (callback_url), the earlier
-- runs of a requeued order (history, a JSON array), and the callback deliveries.
ALTER TABLE orders ADD COLUMN callback_url TEXT;
ALTER TABLE orders ADD COLUMN history TEXT;

-- One delivery per order with a callback_url, made pending by the very statement that makes the
-- order final (the trigger below runs inside it), so a pending delivery survives any crash
-- after the order's commit. status: pending, delivered or failed (given up).
CREATE TABLE callbacks (
    order_id   TEXT    PRIMARY KEY,
    url        TEXT    NOT NULL,
    status     TEXT    NOT NULL
        CHECK (status = 'pending' OR status = 'delivered' OR status = 'failed'),
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL    NOT NULL,
    next_at    REAL    NOT NULL
) WITHOUT ROWID;

-- What the delivery service looks at: pending deliveries by when they are due.
CREATE INDEX callbacks_due ON callbacks (next_at) WHERE status = 'pending';

-- A trigger rather than statements in every finishing write (complete, fail, cancel, poison):
-- its WHEN clause is one NULL test for an order without a callback.
CREATE TRIGGER orders_finished_with_callback AFTER UPDATE OF status ON orders
WHEN NEW.callback_url IS NOT NULL
 AND (NEW.status = 'succeeded' OR NEW.status = 'failed' OR NEW.status = 'cancelled')
BEGIN
    INSERT INTO callbacks (order_id, url, status, attempts, last_error, created_at, next_at)
    VALUES (NEW.id, NEW.callback_url, 'pending', 0, NULL, NEW.finished_at, NEW.finished_at)
    ON CONFLICT (order_id) DO UPDATE
    SET url = excluded.url, status = 'pending', attempts = 0, last_error = NULL,
        created_at = excluded.created_at, next_at = excluded.next_at;
END;

-- Retention deletes an order's delivery with it.
CREATE TRIGGER orders_callback_deleted AFTER DELETE ON orders
WHEN OLD.callback_url IS NOT NULL
BEGIN
    DELETE FROM callbacks WHERE order_id = OLD.id;
END;
