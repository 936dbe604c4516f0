-- starpod-cron schema version 6 (PostgreSQL): runs that speak only when they have something
-- to say, memory between runs, self-limiting jobs.
-- Per job: notify policy and the hash of the last delivered result; context and the last
-- successful result it hands the next run; pausing after failures in a row; start/end times,
-- max_runs and the runs counted for it; stale_after; counts of silent and suppressed runs.
ALTER TABLE jobs ADD COLUMN notify text NOT NULL DEFAULT 'always'
    CHECK (notify IN ('always', 'on_failure', 'on_change', 'never'));
ALTER TABLE jobs ADD COLUMN context text NOT NULL DEFAULT 'none'
    CHECK (context IN ('none', 'last'));
ALTER TABLE jobs ADD COLUMN pause_after_failures integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN start_at bigint;
ALTER TABLE jobs ADD COLUMN end_at bigint;
ALTER TABLE jobs ADD COLUMN max_runs bigint;
ALTER TABLE jobs ADD COLUMN stale_after_ms bigint;
ALTER TABLE jobs ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN paused_reason text;
ALTER TABLE jobs ADD COLUMN finished_runs bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN silent_runs bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN suppressed_runs bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN notify_hash text;
ALTER TABLE jobs ADD COLUMN previous_result text;
ALTER TABLE jobs ADD COLUMN previous_result_at bigint;
ALTER TABLE jobs ADD COLUMN stale_streak integer NOT NULL DEFAULT 0;
-- Per run: a silent answer, why its result was not delivered, what it did to its job.
ALTER TABLE runs ADD COLUMN silent boolean NOT NULL DEFAULT false;
ALTER TABLE runs ADD COLUMN suppressed text;
ALTER TABLE runs ADD COLUMN notice text;
