-- starpod-cron schema version 5 (SQLite): job names are unique per owner (each user has a
-- namespace, agent-level jobs have theirs), jobs get a description, runs record when their
-- lease holder last proved alive, and deliveries sent in pieces record how far they got.
-- SQLite cannot drop the old UNIQUE (name) constraint, so the jobs table is rebuilt; every row
-- is copied unchanged.
CREATE TABLE jobs_v5 (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    prompt              TEXT NOT NULL,
    schedule_kind       TEXT NOT NULL CHECK (schedule_kind IN ('one_shot', 'interval', 'cron')),
    schedule_expr       TEXT NOT NULL,
    schedule_anchor_ms  INTEGER,
    enabled             INTEGER NOT NULL,
    delete_after_run    INTEGER NOT NULL,
    timezone            TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    last_run_at         INTEGER,
    next_run_at         INTEGER,
    retry_count         INTEGER NOT NULL DEFAULT 0,
    max_retries         INTEGER NOT NULL,
    last_error          TEXT,
    retry_at            INTEGER,
    retry_scheduled_for INTEGER,
    retry_attempt       INTEGER NOT NULL DEFAULT 0,
    timeout_ms          INTEGER NOT NULL,
    session_mode        TEXT NOT NULL,
    user_id             TEXT,
    misfire_policy      TEXT NOT NULL,
    last_status         TEXT,
    run_count           INTEGER NOT NULL DEFAULT 0,
    running_run_id      TEXT,
    origin              TEXT,
    description         TEXT,
    -- When the job next needs a scheduler: never while disabled or running.
    due_at INTEGER GENERATED ALWAYS AS (
        CASE WHEN enabled = 1 AND running_run_id IS NULL
             THEN min(coalesce(next_run_at, retry_at), coalesce(retry_at, next_run_at))
        END
    ) VIRTUAL
);
INSERT INTO jobs_v5 (
    id, name, prompt, schedule_kind, schedule_expr, schedule_anchor_ms, enabled,
    delete_after_run, timezone, created_at, updated_at, last_run_at, next_run_at, retry_count,
    max_retries, last_error, retry_at, retry_scheduled_for, retry_attempt, timeout_ms,
    session_mode, user_id, misfire_policy, last_status, run_count, running_run_id, origin
)
SELECT
    id, name, prompt, schedule_kind, schedule_expr, schedule_anchor_ms, enabled,
    delete_after_run, timezone, created_at, updated_at, last_run_at, next_run_at, retry_count,
    max_retries, last_error, retry_at, retry_scheduled_for, retry_attempt, timeout_ms,
    session_mode, user_id, misfire_policy, last_status, run_count, running_run_id, origin
FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v5 RENAME TO jobs;
CREATE INDEX jobs_due ON jobs (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX jobs_user ON jobs (user_id, name);
-- One namespace per owner; '' (never a valid user id) stands for agent-level jobs.
CREATE UNIQUE INDEX jobs_owner_name ON jobs (ifnull(user_id, ''), name);
CREATE INDEX jobs_name ON jobs (name);

ALTER TABLE runs ADD COLUMN lease_renewed_at INTEGER;

ALTER TABLE deliveries ADD COLUMN progress INTEGER NOT NULL DEFAULT 0;
-- Undelivered deliveries by destination: what holds back a newer delivery to the same place.
CREATE INDEX deliveries_open ON deliveries (destination, id) WHERE status IN ('pending', 'sending');
