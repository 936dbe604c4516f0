-- starpod-cron schema version 12 (SQLite): what runs cost, spend per period, budgets.
-- Per job: its budgets (US dollars per day and month, tokens per day; NULL: none).
ALTER TABLE jobs ADD COLUMN budget_usd_per_day REAL;
ALTER TABLE jobs ADD COLUMN budget_usd_per_month REAL;
ALTER TABLE jobs ADD COLUMN budget_tokens_per_day INTEGER;
-- Per run: its cost in picodollars (10^-12 USD; NULL: unknown, e.g. an unpriced model).
ALTER TABLE runs ADD COLUMN cost_pusd INTEGER;
-- Spend totals, upserted by the completing transaction of every run: per scope ('job',
-- 'owner', 'global'), key (job id, owner id, ''), period ('day', 'month', 'all') starting at
-- start_ms (midnight / the 1st in the scope's zone; 0 for 'all') and model ('' for none).
CREATE TABLE spend (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    period TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    model TEXT NOT NULL,
    runs INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_pusd INTEGER NOT NULL DEFAULT 0,
    unpriced INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, key, period, start_ms, model)
);
-- One row per budget and period whose owner was told it is spent (one message, not one per
-- skipped run).
CREATE TABLE budget_notices (
    budget TEXT NOT NULL,
    key TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (budget, key, start_ms)
);
