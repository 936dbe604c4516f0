-- starpod-cron schema version 1 (SQLite). Times are epoch milliseconds.
CREATE TABLE jobs (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
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
    -- When the job next needs a scheduler: never while disabled or running.
    due_at INTEGER GENERATED ALWAYS AS (
        CASE WHEN enabled = 1 AND running_run_id IS NULL
             THEN min(coalesce(next_run_at, retry_at), coalesce(retry_at, next_run_at))
        END
    ) VIRTUAL
);
CREATE INDEX jobs_due ON jobs (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX jobs_user ON jobs (user_id, name);

CREATE TABLE runs (
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    job_id           TEXT NOT NULL,
    job_name         TEXT NOT NULL,
    trigger          TEXT NOT NULL,
    scheduled_for    INTEGER NOT NULL,
    attempt          INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    completed_at     INTEGER,
    status           TEXT NOT NULL,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    result_summary   TEXT,
    error            TEXT,
    session_id       TEXT,
    duration_ms      INTEGER
);
-- One key per fire: an occurrence (and each retry attempt of it) is recorded once.
CREATE UNIQUE INDEX runs_occurrence ON runs (job_id, scheduled_for, attempt)
    WHERE trigger <> 'manual';
CREATE INDEX runs_job ON runs (job_id, seq);
CREATE INDEX runs_status ON runs (status, seq);
CREATE INDEX runs_leases ON runs (lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_completed ON runs (completed_at) WHERE completed_at IS NOT NULL;
