-- starpod-cron schema version 3 (PostgreSQL): jitter and overlap per job, and run.started
-- events. jitter_ms: each occurrence fires up to this much after its time; fire_offset_ms is
-- the (deterministic) offset of the next occurrence, kept by the planner with next_run_at.
-- overlap: 'skip', 'queue' or 'allow'; running_count runs are in flight, at most
-- max_instances (only 'allow' may set more than 1).
ALTER TABLE jobs ADD COLUMN jitter_ms bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN fire_offset_ms bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN overlap text NOT NULL DEFAULT 'skip'
    CHECK (overlap IN ('skip', 'queue', 'allow'));
ALTER TABLE jobs ADD COLUMN max_instances integer NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN running_count integer NOT NULL DEFAULT 0;
UPDATE jobs SET running_count = 1 WHERE running_run_id IS NOT NULL;
ALTER TABLE jobs DROP COLUMN due_at;  -- drops jobs_due with it
-- When the job next needs a scheduler: never while disabled or with max_instances in flight
-- (LEAST skips NULLs).
ALTER TABLE jobs ADD COLUMN due_at bigint GENERATED ALWAYS AS (
    CASE WHEN enabled AND running_count < max_instances
         THEN LEAST(next_run_at + fire_offset_ms, retry_at) END
) STORED;
CREATE INDEX jobs_due ON jobs (due_at) WHERE due_at IS NOT NULL;

-- A run now has two kinds of event per destination: 'started' and 'finished'.
ALTER TABLE deliveries ADD COLUMN event text NOT NULL DEFAULT 'finished';
ALTER TABLE deliveries DROP CONSTRAINT deliveries_run_id_destination_key;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_run_event UNIQUE (run_id, destination, event);
