-- starpod-cron schema version 7 (SQLite): jitter and overlap per job, and run.started events.
-- jitter_ms: each occurrence fires up to this much after its time; fire_offset_ms is the
-- (deterministic) offset of the next occurrence, kept by the planner with next_run_at.
-- overlap: 'skip', 'queue' or 'allow'; running_count runs are in flight, at most
-- max_instances (only 'allow' may set more than 1).
ALTER TABLE jobs ADD COLUMN jitter_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN fire_offset_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN overlap TEXT NOT NULL DEFAULT 'skip';
ALTER TABLE jobs ADD COLUMN max_instances INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN running_count INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET running_count = 1 WHERE running_run_id IS NOT NULL;
DROP INDEX jobs_due;
ALTER TABLE jobs DROP COLUMN due_at;
-- When the job next needs a scheduler: never while disabled or with max_instances in flight.
ALTER TABLE jobs ADD COLUMN due_at INTEGER GENERATED ALWAYS AS (
    CASE WHEN enabled = 1 AND running_count < max_instances
         THEN min(coalesce(next_run_at + fire_offset_ms, retry_at),
                  coalesce(retry_at, next_run_at + fire_offset_ms))
    END
) VIRTUAL;
CREATE INDEX jobs_due ON jobs (due_at) WHERE due_at IS NOT NULL;

-- A run now has two kinds of event per destination: 'started' and 'finished'.
CREATE TABLE deliveries_v7 (
    id               INTEGER PRIMARY KEY,
    run_id           TEXT NOT NULL,
    job_id           TEXT NOT NULL,
    job_name         TEXT NOT NULL,
    destination      TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,      -- pending | sending | delivered | dead | published
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    progress         INTEGER NOT NULL DEFAULT 0,
    event            TEXT NOT NULL DEFAULT 'finished',
    UNIQUE (run_id, destination, event)  -- idempotency key: a run's event reaches a place once
);
INSERT INTO deliveries_v7 (
    id, run_id, job_id, job_name, destination, payload, status, attempts, next_attempt_at,
    lease_owner, lease_expires_at, last_error, created_at, delivered_at, progress
)
SELECT
    id, run_id, job_id, job_name, destination, payload, status, attempts, next_attempt_at,
    lease_owner, lease_expires_at, last_error, created_at, delivered_at, progress
FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_v7 RENAME TO deliveries;
CREATE INDEX deliveries_pending ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_sending ON deliveries (lease_expires_at) WHERE status = 'sending';
CREATE INDEX deliveries_destination ON deliveries (destination, id);
CREATE INDEX deliveries_open ON deliveries (destination, id) WHERE status IN ('pending', 'sending');
