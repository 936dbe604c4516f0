-- starpod-cron schema version 6 (SQLite): several gateways on one store. Named leases (one
-- holder at a time, such as the node long-polling a Telegram bot, with the state it hands on:
-- the bot's offset) and node heartbeats (who is up, since when, in which roles).
-- Broadcast events (WebSocket notifications) are written with status 'published'.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    since       INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    state       TEXT
);
CREATE TABLE nodes (
    id            TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    version       TEXT NOT NULL,
    started_at    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    heartbeat_ms  INTEGER NOT NULL,
    stopped_at    INTEGER,
    roles         TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX nodes_last_seen ON nodes (last_seen);
