-- starpod-cron schema version 11 (SQLite): a model per job.
-- Per job: the model call's options (NULL: as [executor] says), the models it falls back to
-- and escalates to, and the cron tools its scheduled runs may call (JSON lists).
ALTER TABLE jobs ADD COLUMN model TEXT;
ALTER TABLE jobs ADD COLUMN system_prompt TEXT;
ALTER TABLE jobs ADD COLUMN temperature REAL;
ALTER TABLE jobs ADD COLUMN max_tokens INTEGER;
ALTER TABLE jobs ADD COLUMN fallback_models TEXT;
ALTER TABLE jobs ADD COLUMN escalate_to TEXT;
ALTER TABLE jobs ADD COLUMN tools TEXT;
-- Per run: the model whose answer is the result, and what each model asked used (JSON).
ALTER TABLE runs ADD COLUMN model TEXT;
ALTER TABLE runs ADD COLUMN usages TEXT;
