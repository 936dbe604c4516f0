-- Queries written once for every dialect, loaded by name (sqlfile.py). Parameters are named
-- (a colon and a name; sqlite3 binds them itself, the PostgreSQL driver numbers them), and
-- {job_columns}-style templates expand to the column lists of starpod_cron.store.records.
-- What differs between dialects (row locks, lists, bulk writes) is in sqlite.sql/postgres.sql.

-- ------------------------------------------------------------------------------- jobs
-- name: get_job
SELECT {job_columns} FROM jobs WHERE id = :id;

-- name: get_job_by_name
SELECT {job_columns} FROM jobs
WHERE coalesce(user_id, '') = coalesce(CAST(:user_id AS text), '') AND name = :name;

-- name: find_jobs_by_name
SELECT {job_columns} FROM jobs WHERE name = :name ORDER BY user_id IS NOT NULL, user_id;

-- name: list_jobs
SELECT {job_columns} FROM jobs ORDER BY name, user_id IS NOT NULL, user_id;

-- name: list_jobs_for_user
SELECT {job_columns} FROM jobs WHERE user_id = :user_id ORDER BY name;

-- name: list_job_briefs
SELECT {job_brief_columns} FROM jobs ORDER BY name, user_id IS NOT NULL, user_id;

-- name: list_job_briefs_for_user
SELECT {job_brief_columns} FROM jobs WHERE user_id = :user_id ORDER BY name;

-- name: select_due
SELECT {job_columns} FROM jobs WHERE due_at <= :until ORDER BY due_at LIMIT :limit;

-- name: next_due_at
SELECT min(due_at) FROM jobs WHERE due_at IS NOT NULL;

-- name: update_job_state
UPDATE jobs SET {job_state_assign} WHERE id = :id;

-- name: delete_job
DELETE FROM jobs WHERE id = :id;

-- name: delete_job_runs
DELETE FROM runs WHERE job_id = :job_id;

-- name: get_user_timezone
SELECT timezone FROM user_prefs WHERE user_id = :user_id;

-- name: set_user_timezone
INSERT INTO user_prefs (user_id, timezone, updated_at) VALUES (:user_id, :timezone, :now)
ON CONFLICT (user_id) DO UPDATE SET timezone = excluded.timezone, updated_at = excluded.updated_at;

-- ------------------------------------------------------------------------------- runs
-- name: get_run
SELECT {run_columns} FROM runs WHERE id = :id;

-- name: list_runs
SELECT {run_columns} FROM runs WHERE job_id = :job_id ORDER BY seq DESC LIMIT :limit;

-- name: list_recent_runs
-- Every job's runs, newest first (walks the runs newest-first until the page is full); a job's
-- own runs are read through runs_job (list_runs, list_job_runs_with_status) and the runs in
-- flight through runs_leases (list_running_runs, per dialect), so neither walks every run.
SELECT {run_columns} FROM runs
WHERE (CAST(:status AS text) IS NULL OR status = :status)
ORDER BY seq DESC LIMIT :limit;

-- name: list_job_runs_with_status
SELECT {run_columns} FROM runs WHERE job_id = :job_id AND status = :status
ORDER BY seq DESC LIMIT :limit;

-- name: page_runs
-- A page of runs across jobs (an owner's, or everyone's), newest first, keyset-paged on seq
-- (the primary key, read backwards): stable while new runs arrive.
SELECT seq, {run_columns} FROM runs
WHERE seq < :before
  AND (CAST(:status AS text) IS NULL OR status = :status)
  AND (CAST(:trigger AS text) IS NULL OR trigger = :trigger)
  AND (CAST(:owner AS text) IS NULL OR job_id IN (SELECT id FROM jobs WHERE user_id = :owner))
ORDER BY seq DESC LIMIT :limit;

-- name: count_runs
SELECT count(*) FROM runs
WHERE (CAST(:status AS text) IS NULL OR status = :status)
  AND (CAST(:trigger AS text) IS NULL OR trigger = :trigger)
  AND (CAST(:owner AS text) IS NULL OR job_id IN (SELECT id FROM jobs WHERE user_id = :owner));

-- name: page_job_runs
-- A page of one job's runs, newest first, through runs_job (job_id, seq).
SELECT seq, {run_columns} FROM runs
WHERE job_id = :job_id AND seq < :before
  AND (CAST(:status AS text) IS NULL OR status = :status)
  AND (CAST(:trigger AS text) IS NULL OR trigger = :trigger)
  AND (CAST(:owner AS text) IS NULL OR job_id IN (SELECT id FROM jobs WHERE user_id = :owner))
ORDER BY seq DESC LIMIT :limit;

-- name: count_job_runs
SELECT count(*) FROM runs
WHERE job_id = :job_id
  AND (CAST(:status AS text) IS NULL OR status = :status)
  AND (CAST(:trigger AS text) IS NULL OR trigger = :trigger)
  AND (CAST(:owner AS text) IS NULL OR job_id IN (SELECT id FROM jobs WHERE user_id = :owner));

-- name: runs_per_hour
-- Runs started per whole hour since :since (an hour's start), and the failed or timed-out
-- among them, of an owner's jobs (or everyone's): the overview's chart.
SELECT (started_at - :since) / 3600000 AS slot, count(*),
       sum(CASE WHEN status IN ('failed', 'timeout') THEN 1 ELSE 0 END)
FROM runs
WHERE started_at >= :since
  AND (CAST(:owner AS text) IS NULL OR job_id IN (SELECT id FROM jobs WHERE user_id = :owner))
GROUP BY slot;

-- name: running_owners
SELECT DISTINCT lease_owner FROM runs WHERE status = 'running' AND lease_owner IS NOT NULL;

-- name: run_stats
SELECT job_id, count(*), sum(CASE WHEN status IN ('failed', 'timeout') THEN 1 ELSE 0 END),
       coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0),
       (SELECT r.duration_ms FROM runs r
        WHERE r.job_id = runs.job_id AND r.duration_ms IS NOT NULL
        ORDER BY r.seq DESC LIMIT 1)
FROM runs GROUP BY job_id;

-- name: count_old_runs
SELECT count(*) FROM runs WHERE completed_at IS NOT NULL AND completed_at < :cutoff;

-- name: delete_old_runs
DELETE FROM runs WHERE completed_at IS NOT NULL AND completed_at < :cutoff;

-- name: count_old_messages
SELECT count(*) FROM messages WHERE created_at < :cutoff;

-- name: delete_old_messages
DELETE FROM messages WHERE created_at < :cutoff;

-- name: count_old_deliveries
SELECT count(*) FROM deliveries
WHERE created_at < :cutoff AND status IN ('delivered', 'dead', 'published');

-- name: delete_old_deliveries
DELETE FROM deliveries
WHERE created_at < :cutoff AND status IN ('delivered', 'dead', 'published');

-- ----------------------------------------------------------- backfill and memory
-- name: occurrence_runs
-- The runs of a job's occurrences in [first, last] (manual runs are no occurrence's): read
-- by a backfill under the job's lock, through the runs_occurrence index.
SELECT scheduled_for, attempt, status FROM runs
WHERE job_id = :job_id AND trigger <> 'manual'
  AND scheduled_for >= :first AND scheduled_for <= :last;

-- name: latest_attempt
-- The newest attempt recorded for an occurrence (a retry's judge, read under the job's lock),
-- through the runs_occurrence index (its condition, repeated).
SELECT max(attempt) FROM runs
WHERE job_id = :job_id AND scheduled_for = :scheduled_for
  AND trigger <> 'manual' AND status <> 'held';

-- name: job_memory
SELECT context, previous_result, previous_result_at FROM jobs WHERE id = :id;

-- ---------------------------------------------------------------------- conversations
-- name: get_session_by_key
SELECT id FROM sessions WHERE key = :key;

-- name: insert_session
INSERT INTO sessions (id, key, created_at, updated_at) VALUES (:id, :key, :now, :now)
ON CONFLICT (key) DO NOTHING;

-- name: session_messages
SELECT role, content, run_id, created_at FROM (
    SELECT seq, role, content, run_id, created_at FROM messages
    WHERE session_id = :session_id ORDER BY seq DESC LIMIT :limit
) AS newest ORDER BY seq;

-- name: touch_session
UPDATE sessions SET updated_at = :now WHERE id = :session_id;

-- name: trim_messages
DELETE FROM messages
WHERE session_id = :session_id AND seq < (
    SELECT seq FROM messages WHERE session_id = :session_id
    ORDER BY seq DESC LIMIT 1 OFFSET :keep - 1
);

-- ---------------------------------------------------------------------------- outbox
-- name: sending_owners
SELECT DISTINCT lease_owner FROM deliveries WHERE status = 'sending';

-- name: finish_delivery
UPDATE deliveries SET status = :status, next_attempt_at = :next_attempt_at,
       last_error = :error, delivered_at = :delivered_at, attempts = attempts - :give_back,
       lease_owner = NULL, lease_expires_at = NULL
WHERE id = :id AND status = 'sending' AND lease_owner = :owner;

-- name: delivery_progress
UPDATE deliveries SET progress = :progress
WHERE id = :id AND status = 'sending' AND lease_owner = :owner;

-- name: last_delivery_id
SELECT coalesce(max(id), 0) FROM deliveries;

-- name: count_deliveries
SELECT status, count(*) FROM deliveries GROUP BY status;

-- name: deliveries_with_status
SELECT {delivery_columns} FROM deliveries WHERE status = :status ORDER BY id DESC LIMIT :limit;

-- name: deliveries_of_job
SELECT {delivery_columns} FROM deliveries WHERE status = :status AND job_id = :job_id
ORDER BY id DESC LIMIT :limit;

-- name: get_delivery
SELECT {delivery_columns} FROM deliveries WHERE id = :id;

-- name: retry_delivery
UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = :now,
       lease_owner = NULL, lease_expires_at = NULL
WHERE id = :id AND status = 'dead';

-- name: refuse_destination
-- One more refusal in a row (the first one opens the row); the caller sets retry_at next.
INSERT INTO destination_refusals (name, since, retry_at, failures, error)
VALUES (:name, :now, :now, 1, :error)
ON CONFLICT (name) DO UPDATE SET failures = destination_refusals.failures + 1,
                                 error = excluded.error
RETURNING since, failures;

-- name: destination_retry_at
UPDATE destination_refusals SET retry_at = :retry_at WHERE name = :name;

-- name: take_destination_probe
UPDATE destination_refusals SET retry_at = :until WHERE name = :name AND retry_at <= :now;

-- name: clear_destination
DELETE FROM destination_refusals WHERE name = :name;

-- name: refusing_destinations
SELECT name, since, retry_at, failures, error FROM destination_refusals ORDER BY name;

-- ---------------------------------------------------------------------- coordination
-- name: insert_lease
INSERT INTO leases (name, holder, since, expires_at) VALUES (:name, :holder, :since, :expires)
ON CONFLICT (name) DO NOTHING;

-- name: update_lease
UPDATE leases SET holder = :holder, since = :since, expires_at = :expires WHERE name = :name;

-- name: save_lease_state
UPDATE leases SET state = :state WHERE name = :name AND holder = :holder AND expires_at > :now;

-- name: release_lease
UPDATE leases SET expires_at = :now WHERE name = :name AND holder = :holder AND expires_at > :now;

-- name: list_leases
SELECT name, holder, since, expires_at, state FROM leases ORDER BY name;

-- name: heartbeat
INSERT INTO nodes (id, host, pid, version, started_at, last_seen, heartbeat_ms, stopped_at, roles)
VALUES (:id, :host, :pid, :version, :started_at, :last_seen, :heartbeat_ms, :stopped_at, :roles)
ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen,
                               heartbeat_ms = excluded.heartbeat_ms,
                               stopped_at = excluded.stopped_at, roles = excluded.roles;

-- name: forget_nodes
DELETE FROM nodes WHERE last_seen < :before OR stopped_at < :stopped_before;

-- name: schedulers_up
SELECT count(*) FROM nodes
WHERE stopped_at IS NULL AND last_seen + :beats * heartbeat_ms >= :now
  AND roles LIKE '%"scheduler"%';

-- name: list_nodes
SELECT id, host, pid, version, started_at, last_seen, heartbeat_ms, stopped_at, roles
FROM nodes WHERE last_seen >= :since AND (stopped_at IS NULL OR stopped_at >= :stopped_since)
ORDER BY started_at DESC, id;

-- ---------------------------------------------------------------- dashboard log-ins
-- name: insert_login_session
INSERT INTO login_sessions
    (id_hash, user_id, token_fingerprint, created_at, expires_at, last_used_at)
VALUES (:key, :user_id, :fingerprint, :now, :expires, :now);

-- name: get_login_session
SELECT user_id, token_fingerprint, created_at, expires_at, last_used_at
FROM login_sessions WHERE id_hash = :key AND expires_at > :now;

-- name: touch_login_session
UPDATE login_sessions SET last_used_at = :now WHERE id_hash = :key AND last_used_at < :before;

-- name: delete_login_session
DELETE FROM login_sessions WHERE id_hash = :key;

-- name: delete_expired_login_sessions
DELETE FROM login_sessions WHERE expires_at <= :now;

-- name: ping
SELECT 1;

-- ------------------------------------------------------------------------------ spend
-- name: tell_budget
-- The first skip of a budget's period tells the owner; later ones find the row (0 rows).
INSERT INTO budget_notices (budget, key, start_ms, created_at)
VALUES (:budget, :key, :start_ms, :now)
ON CONFLICT (budget, key, start_ms) DO NOTHING;

-- name: usage_rows
-- Spend per scope, key, period and model, for the usage views (newest periods first). All
-- time is the sum of the month rows (every run adds to one day and one month of its scope);
-- the 'all' rows written before that (each the sum of its months then) are left as they were
-- and not read.
SELECT scope, key, period, start_ms, model, runs, prompt_tokens, completion_tokens,
       cost_pusd, unpriced
FROM spend
WHERE period <> 'all'
  AND (CAST(:scope AS text) IS NULL OR scope = :scope)
  AND (CAST(:key AS text) IS NULL OR key = :key)
  AND (CAST(:period AS text) IS NULL OR period = :period)
  AND start_ms >= :since
UNION ALL
SELECT scope, key, 'all', 0, model, CAST(sum(runs) AS bigint),
       CAST(sum(prompt_tokens) AS bigint), CAST(sum(completion_tokens) AS bigint),
       CAST(sum(cost_pusd) AS bigint), CAST(sum(unpriced) AS bigint)
FROM spend
WHERE period = 'month'
  AND (CAST(:scope AS text) IS NULL OR scope = :scope)
  AND (CAST(:key AS text) IS NULL OR key = :key)
  AND (CAST(:period AS text) IS NULL OR CAST(:period AS text) = 'all')
  AND :since <= 0
GROUP BY scope, key, model
ORDER BY scope, key, period, start_ms DESC, model
LIMIT :limit;
