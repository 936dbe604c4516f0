-- starpod-cron schema version 2 (PostgreSQL): several gateways on one store. Named leases (one
-- holder at a time, such as the node long-polling a Telegram bot, with the state it hands on:
-- the bot's offset) and node heartbeats (who is up, since when, in which roles).
-- Broadcast events (WebSocket notifications) are written with status 'published'.
CREATE TABLE leases (
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    since       bigint NOT NULL,
    expires_at  bigint NOT NULL,
    state       text
);
CREATE TABLE nodes (
    id            text PRIMARY KEY,
    host          text NOT NULL,
    pid           integer NOT NULL,
    version       text NOT NULL,
    started_at    bigint NOT NULL,
    last_seen     bigint NOT NULL,
    heartbeat_ms  bigint NOT NULL,
    stopped_at    bigint,
    roles         text NOT NULL DEFAULT '[]'
);
CREATE INDEX nodes_last_seen ON nodes (last_seen);
