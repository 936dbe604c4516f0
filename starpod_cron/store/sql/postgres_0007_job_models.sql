-- starpod-cron schema version 7 (PostgreSQL): a model per job.
-- Per job: the model call's options (NULL: as [executor] says), the models it falls back to
-- and escalates to, and the cron tools its scheduled runs may call (JSON lists).
ALTER TABLE jobs ADD COLUMN model text;
ALTER TABLE jobs ADD COLUMN system_prompt text;
ALTER TABLE jobs ADD COLUMN temperature double precision;
ALTER TABLE jobs ADD COLUMN max_tokens bigint;
ALTER TABLE jobs ADD COLUMN fallback_models text;
ALTER TABLE jobs ADD COLUMN escalate_to text;
ALTER TABLE jobs ADD COLUMN tools text;
-- Per run: the model whose answer is the result, and what each model asked used (JSON).
ALTER TABLE runs ADD COLUMN model text;
ALTER TABLE runs ADD COLUMN usages text;
