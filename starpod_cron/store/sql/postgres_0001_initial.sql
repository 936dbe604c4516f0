-- starpod-cron schema version 1 (PostgreSQL). Times are epoch milliseconds (bigint), the same
-- as in SQLite, so every backend shares the planning code. The schema matches SQLite's
-- version 5: names unique per owner, leases with proof of life, deliveries with progress.
CREATE TABLE jobs (
    id                  text PRIMARY KEY,
    name                text NOT NULL,
    prompt              text NOT NULL,
    schedule_kind       text NOT NULL CHECK (schedule_kind IN ('one_shot', 'interval', 'cron')),
    schedule_expr       text NOT NULL,
    schedule_anchor_ms  bigint,
    enabled             boolean NOT NULL,
    delete_after_run    boolean NOT NULL,
    timezone            text NOT NULL,
    created_at          bigint NOT NULL,
    updated_at          bigint NOT NULL,
    last_run_at         bigint,
    next_run_at         bigint,
    retry_count         integer NOT NULL DEFAULT 0,
    max_retries         integer NOT NULL,
    last_error          text,
    retry_at            bigint,
    retry_scheduled_for bigint,
    retry_attempt       integer NOT NULL DEFAULT 0,
    timeout_ms          bigint NOT NULL,
    session_mode        text NOT NULL,
    user_id             text,
    misfire_policy      text NOT NULL,
    last_status         text,
    run_count           integer NOT NULL DEFAULT 0,
    running_run_id      text,
    origin              text,
    description         text,
    -- When the job next needs a scheduler: never while disabled or running (LEAST skips NULLs).
    due_at bigint GENERATED ALWAYS AS (
        CASE WHEN enabled AND running_run_id IS NULL THEN LEAST(next_run_at, retry_at) END
    ) STORED
);
CREATE INDEX jobs_due ON jobs (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX jobs_user ON jobs (user_id, name);
CREATE INDEX jobs_name ON jobs (name);
-- One namespace per owner; '' (never a valid user id) stands for agent-level jobs.
CREATE UNIQUE INDEX jobs_owner_name ON jobs ((coalesce(user_id, '')), name);

CREATE TABLE runs (
    seq              bigserial PRIMARY KEY,
    id               text NOT NULL UNIQUE,
    job_id           text NOT NULL,
    job_name         text NOT NULL,
    trigger          text NOT NULL,
    scheduled_for    bigint NOT NULL,
    attempt          integer NOT NULL,
    started_at       bigint NOT NULL,
    completed_at     bigint,
    status           text NOT NULL,
    lease_owner      text,
    lease_expires_at bigint,
    result_summary   text,
    error            text,
    session_id       text,
    duration_ms      bigint,
    prompt_tokens    integer,
    completion_tokens integer,
    lease_renewed_at bigint
);
-- One key per fire: an occurrence (and each retry attempt of it) is recorded once, whichever
-- node claims it.
CREATE UNIQUE INDEX runs_occurrence ON runs (job_id, scheduled_for, attempt)
    WHERE trigger <> 'manual';
CREATE INDEX runs_job ON runs (job_id, seq);
CREATE INDEX runs_leases ON runs (lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_completed ON runs (completed_at) WHERE completed_at IS NOT NULL;

CREATE TABLE sessions (
    id         text PRIMARY KEY,
    key        text NOT NULL UNIQUE,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
);

CREATE TABLE messages (
    seq        bigserial PRIMARY KEY,
    session_id text NOT NULL,
    role       text NOT NULL,
    content    text NOT NULL,
    run_id     text,
    created_at bigint NOT NULL
);
CREATE INDEX messages_session ON messages (session_id, seq);

-- One row per finished run and destination, written in the run's completing transaction. id
-- doubles as the event id clients replay from; ids are taken under a lock held to commit, so
-- they become visible in id order and a reader tailing by id never skips one.
CREATE TABLE deliveries (
    id               bigserial PRIMARY KEY,
    run_id           text NOT NULL,
    job_id           text NOT NULL,
    job_name         text NOT NULL,
    destination      text NOT NULL,
    payload          text NOT NULL,
    status           text NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  bigint NOT NULL,
    lease_owner      text,
    lease_expires_at bigint,
    last_error       text,
    created_at       bigint NOT NULL,
    delivered_at     bigint,
    progress         integer NOT NULL DEFAULT 0,
    UNIQUE (run_id, destination)
);
CREATE INDEX deliveries_pending ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_sending ON deliveries (lease_expires_at) WHERE status = 'sending';
CREATE INDEX deliveries_destination ON deliveries (destination, id);
CREATE INDEX deliveries_open ON deliveries (destination, id)
    WHERE status IN ('pending', 'sending');

CREATE TABLE user_prefs (
    user_id    text PRIMARY KEY,
    timezone   text,
    updated_at bigint NOT NULL
);
