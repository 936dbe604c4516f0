-- starpod-cron schema version 9 (SQLite): destinations refusing every message (a rejected bot
-- token, an unreachable API), shared by every node: their deliveries wait untried while one
-- outbox probes at retry_at; failures counts the refusals in a row (the probe backoff).
CREATE TABLE destination_refusals (
    name      TEXT PRIMARY KEY,
    since     INTEGER NOT NULL,
    retry_at  INTEGER NOT NULL,
    failures  INTEGER NOT NULL,
    error     TEXT NOT NULL
);
