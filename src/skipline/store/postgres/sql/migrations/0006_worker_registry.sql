-- The worker registry: one row per live worker pool, kept up to date by its heartbeats and
-- expired like a lease, on the database clock: a row whose expires_at has passed is a pool
-- that is gone (the lease reaper deletes it).
CREATE TABLE workers (
    id             text COLLATE "C" PRIMARY KEY,
    host           text NOT NULL,
    pid            integer NOT NULL,
    kinds          text[] NOT NULL,
    slots_busy     integer NOT NULL,
    slots_total    integer NOT NULL,
    started_at     timestamptz NOT NULL,
    last_heartbeat timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL
);
