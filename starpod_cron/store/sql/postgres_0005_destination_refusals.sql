-- starpod-cron schema version 5 (PostgreSQL): destinations refusing every message (a rejected
-- bot token, an unreachable API), shared by every node: their deliveries wait untried while
-- one outbox probes at retry_at; failures counts the refusals in a row (the probe backoff).
CREATE TABLE destination_refusals (
    name      text PRIMARY KEY,
    since     bigint NOT NULL,
    retry_at  bigint NOT NULL,
    failures  integer NOT NULL,
    error     text NOT NULL
);
