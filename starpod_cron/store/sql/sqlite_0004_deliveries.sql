-- starpod-cron schema version 4 (SQLite): where a job came from, a durable delivery outbox,
-- and per-user preferences.
ALTER TABLE jobs ADD COLUMN origin TEXT;  -- JSON, e.g. {"telegram_chat_id": 1, "thread_id": 7}

-- One row per finished run and destination, written in the run's completing transaction.
-- id doubles as the event id clients replay from.
CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    run_id           TEXT NOT NULL,
    job_id           TEXT NOT NULL,
    job_name         TEXT NOT NULL,
    destination      TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,      -- pending | sending | delivered | dead
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    UNIQUE (run_id, destination)         -- idempotency key: a run reaches a destination once
);
CREATE INDEX deliveries_pending ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_sending ON deliveries (lease_expires_at) WHERE status = 'sending';
CREATE INDEX deliveries_destination ON deliveries (destination, id);

CREATE TABLE user_prefs (
    user_id    TEXT PRIMARY KEY,
    timezone   TEXT,
    updated_at INTEGER NOT NULL
);
