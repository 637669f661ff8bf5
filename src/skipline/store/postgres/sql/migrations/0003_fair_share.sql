-- Fair share inside a tier (start-time fair queuing, domain/fairness.py).
--
-- Every order keeps the customer its key named ('' for none) and its start tag, fixed when it
-- is accepted; the claim walks ready orders by (priority, start_tag, seq) instead of
-- (priority, seq). Orders queued before this migration get tag 0: they keep their FIFO order
-- and go before what is accepted after it.
ALTER TABLE orders ADD COLUMN customer text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN start_tag bigint NOT NULL DEFAULT 0;

DROP INDEX orders_ready;
CREATE INDEX orders_ready ON orders (priority, start_tag, seq) INCLUDE (tier)
    WHERE status = 'queued';

-- The finish tag of each fair-share group's last accepted order. The statement that inserts
-- a group's orders updates its row, which holds the row's lock until it commits: concurrent
-- submissions of one group (from several API processes) take their turns one after another.
CREATE TABLE fair_groups (
    tier     text COLLATE "C" NOT NULL,
    owner    text COLLATE "C" NOT NULL,
    customer text COLLATE "C" NOT NULL,
    finish   bigint NOT NULL,
    PRIMARY KEY (tier, owner, customer)
);

-- Per priority, the virtual time: the largest start tag a claim has handed out.
CREATE TABLE fair_clocks (
    priority     integer PRIMARY KEY,
    virtual_time bigint NOT NULL
);

-- Keys that submit for their own customers, and every key's weight.
ALTER TABLE api_keys ADD COLUMN customers boolean NOT NULL DEFAULT false;
ALTER TABLE api_keys ADD COLUMN weight integer NOT NULL DEFAULT 1 CHECK (weight >= 1);
