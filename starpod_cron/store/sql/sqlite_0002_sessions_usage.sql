-- starpod-cron schema version 2 (SQLite): token usage on runs, conversations for session_mode=main.
ALTER TABLE runs ADD COLUMN prompt_tokens INTEGER;
ALTER TABLE runs ADD COLUMN completion_tokens INTEGER;

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    key        TEXT NOT NULL UNIQUE,   -- 'user:<user_id>' or 'agent'
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE messages (
    seq        INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    role       TEXT NOT NULL,
    content    TEXT NOT NULL,
    run_id     TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX messages_session ON messages (session_id, seq);
