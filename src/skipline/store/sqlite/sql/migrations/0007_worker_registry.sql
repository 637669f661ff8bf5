-- The worker registry: one row per live worker pool, kept up to date by its heartbeats and
-- expired like a lease: a row whose expires_at has passed is a pool that is gone (the lease
-- reaper deletes it). kinds is a JSON array of strings.
CREATE TABLE workers (
    id             TEXT    PRIMARY KEY,
    host           TEXT    NOT NULL,
    pid            INTEGER NOT NULL,
    kinds          TEXT    NOT NULL,
    slots_busy     INTEGER NOT NULL,
    slots_total    INTEGER NOT NULL,
    started_at     REAL    NOT NULL,
    last_heartbeat REAL    NOT NULL,
    expires_at     REAL    NOT NULL
) WITHOUT ROWID;
