-- starpod-cron schema version 9 (PostgreSQL): provider holds (a spent quota, or a wait longer
-- than a run's timeout). held_until: until when the job waits; then its held occurrence runs
-- again with the same attempt number, so the occurrence key leaves held runs out.
ALTER TABLE jobs ADD COLUMN held_until bigint;
ALTER TABLE jobs DROP COLUMN due_at;  -- drops jobs_due with it
-- When the job next needs a scheduler: never while disabled or with max_instances in flight;
-- while held, at held_until (not at a fire that comes before it).
ALTER TABLE jobs ADD COLUMN due_at bigint GENERATED ALWAYS AS (
    CASE WHEN enabled AND running_count < max_instances
         THEN COALESCE(held_until, LEAST(next_run_at + fire_offset_ms, retry_at)) END
) STORED;
CREATE INDEX jobs_due ON jobs (due_at) WHERE due_at IS NOT NULL;
DROP INDEX runs_occurrence;
CREATE UNIQUE INDEX runs_occurrence ON runs (job_id, scheduled_for, attempt)
    WHERE trigger <> 'manual' AND status <> 'held';
