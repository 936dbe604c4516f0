-- starpod-cron schema version 8 (PostgreSQL): what runs cost, spend per period, budgets.
-- Per job: its budgets (US dollars per day and month, tokens per day; NULL: none).
ALTER TABLE jobs ADD COLUMN budget_usd_per_day double precision;
ALTER TABLE jobs ADD COLUMN budget_usd_per_month double precision;
ALTER TABLE jobs ADD COLUMN budget_tokens_per_day bigint;
-- Per run: its cost in picodollars (10^-12 USD; NULL: unknown, e.g. an unpriced model).
ALTER TABLE runs ADD COLUMN cost_pusd bigint;
-- Spend totals, upserted by the completing transaction of every run: per scope ('job',
-- 'owner', 'global'), key (job id, owner id, ''), period ('day', 'month', 'all') starting at
-- start_ms (midnight / the 1st in the scope's zone; 0 for 'all') and model ('' for none).
CREATE TABLE spend (
    scope text NOT NULL CHECK (scope IN ('job', 'owner', 'global')),
    key text NOT NULL,
    period text NOT NULL CHECK (period IN ('day', 'month', 'all')),
    start_ms bigint NOT NULL,
    model text NOT NULL,
    runs bigint NOT NULL DEFAULT 0,
    prompt_tokens bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    cost_pusd bigint NOT NULL DEFAULT 0,
    unpriced bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, key, period, start_ms, model)
);
-- One row per budget and period whose owner was told it is spent (one message, not one per
-- skipped run).
CREATE TABLE budget_notices (
    budget text NOT NULL,
    key text NOT NULL,
    start_ms bigint NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (budget, key, start_ms)
);
