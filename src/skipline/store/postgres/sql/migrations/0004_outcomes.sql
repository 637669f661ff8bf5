-- Outcomes back to the caller: where to POST an order's outcome (callback_url), the earlier
-- runs of a requeued order (history, a JSON array), and the callback deliveries.
ALTER TABLE orders ADD COLUMN callback_url text, ADD COLUMN history json;

-- One delivery per order with a callback_url, made pending by the very statement that makes the
-- order final (the trigger below runs inside it), so a pending delivery survives any crash
-- after the order's commit. Retention deletes it with its order.
CREATE TABLE callbacks (
    order_id   text COLLATE "C" PRIMARY KEY REFERENCES orders (id) ON DELETE CASCADE,
    url        text NOT NULL,
    status     text COLLATE "C" NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts   integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamptz NOT NULL,
    next_at    timestamptz NOT NULL
);

-- What the delivery services look at: pending deliveries by when they are due.
CREATE INDEX callbacks_due ON callbacks (next_at) WHERE status = 'pending';

CREATE FUNCTION skipline_callback_due() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO callbacks (order_id, url, status, attempts, last_error, created_at, next_at)
    VALUES (NEW.id, NEW.callback_url, 'pending', 0, NULL, now(), now())
    ON CONFLICT (order_id) DO UPDATE
    SET url = excluded.url, status = 'pending', attempts = 0, last_error = NULL,
        created_at = excluded.created_at, next_at = excluded.next_at;
    RETURN NULL;
END
$$;

-- A trigger rather than statements in every finishing write (complete, fail, cancel, poison):
-- its WHEN clause is evaluated without calling the function, one NULL test for an order
-- without a callback.
CREATE TRIGGER orders_finished_with_callback AFTER UPDATE OF status ON orders
FOR EACH ROW
WHEN (NEW.callback_url IS NOT NULL AND NEW.status IN ('succeeded', 'failed', 'cancelled'))
EXECUTE FUNCTION skipline_callback_due();
