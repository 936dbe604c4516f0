-- starpod-cron schema version 10 (SQLite): runs that speak only when they have something to
-- say, memory between runs, self-limiting jobs.
-- Per job: notify policy and the hash of the last delivered result; context and the last
-- successful result it hands the next run; pausing after failures in a row; start/end times,
-- max_runs and the runs counted for it; stale_after; counts of silent and suppressed runs.
ALTER TABLE jobs ADD COLUMN notify TEXT NOT NULL DEFAULT 'always';
ALTER TABLE jobs ADD COLUMN context TEXT NOT NULL DEFAULT 'none';
ALTER TABLE jobs ADD COLUMN pause_after_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN start_at INTEGER;
ALTER TABLE jobs ADD COLUMN end_at INTEGER;
ALTER TABLE jobs ADD COLUMN max_runs INTEGER;
ALTER TABLE jobs ADD COLUMN stale_after_ms INTEGER;
ALTER TABLE jobs ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN paused_reason TEXT;
ALTER TABLE jobs ADD COLUMN finished_runs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN silent_runs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN suppressed_runs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN notify_hash TEXT;
ALTER TABLE jobs ADD COLUMN previous_result TEXT;
ALTER TABLE jobs ADD COLUMN previous_result_at INTEGER;
ALTER TABLE jobs ADD COLUMN stale_streak INTEGER NOT NULL DEFAULT 0;
-- Per run: a silent answer, why its result was not delivered, what it did to its job.
ALTER TABLE runs ADD COLUMN silent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN suppressed TEXT;
ALTER TABLE runs ADD COLUMN notice TEXT;
