-- Fair share inside a tier (start-time fair queuing, domain/fairness.py).
--
-- Every order keeps the customer its key named ('' for none) and its start tag, fixed when it
-- is accepted; the ordinary half of the claim walks queued orders by (priority, start_tag,
-- seq) instead of (priority, seq). Orders queued before this migration get tag 0: they keep
-- their FIFO order and go before what is accepted after it.
ALTER TABLE orders ADD COLUMN customer TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN start_tag INTEGER NOT NULL DEFAULT 0;

DROP INDEX orders_queued_by_priority;
CREATE INDEX orders_queued_by_turn
    ON orders (priority, start_tag, seq, available_at, overdue_at, status)
    WHERE status = 'queued';

-- The finish tag of each fair-share group's last accepted order, written by the transaction
-- that inserts the group's orders.
CREATE TABLE fair_groups (
    tier     TEXT    NOT NULL,
    owner    TEXT    NOT NULL,
    customer TEXT    NOT NULL,
    finish   INTEGER NOT NULL,
    PRIMARY KEY (tier, owner, customer)
) WITHOUT ROWID;

-- Per priority, the virtual time: the largest start tag a claim has handed out.
CREATE TABLE fair_clocks (
    priority     INTEGER PRIMARY KEY,
    virtual_time INTEGER NOT NULL
);

-- Keys that submit for their own customers, and every key's weight.
ALTER TABLE api_keys ADD COLUMN customers INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN weight INTEGER NOT NULL DEFAULT 1;
