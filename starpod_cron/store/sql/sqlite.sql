-- The SQLite side of what differs between dialects (common.sql holds the rest). Every write
-- is one BEGIN IMMEDIATE transaction (one writer at a time), so nothing here locks rows;
-- lists arrive as JSON arrays (the driver encodes them) and are read with json_each; a bulk
-- write is executemany of a one-row statement.

-- ------------------------------------------------------------------------------- jobs
-- name: lock_job
SELECT {job_columns} FROM jobs WHERE id = :id;

-- name: lock_jobs
SELECT {job_columns} FROM jobs WHERE id IN (SELECT value FROM json_each(:ids));

-- name: lock_owners
-- nothing to lock: BEGIN IMMEDIATE already keeps every other add out until commit

-- name: owner_job_counts
SELECT user_id, count(*) FROM jobs
WHERE user_id IN (SELECT value FROM json_each(:owners)) GROUP BY user_id;

-- name: names_taken
-- Asked only after insert_jobs refused a name (rolled back), to say which one.
-- Each new name is looked up by (name, owner) in jobs_owner_name; the owners are materialized
-- so their position is found through an automatic index. CROSS JOIN fixes that order: left to
-- the planner, it scanned every job of an owner for each pair (a 20,000-job add took minutes).
WITH o(pos, owner) AS MATERIALIZED (SELECT key, value FROM json_each(:owners))
SELECT j.user_id, j.name FROM json_each(:names) AS n CROSS JOIN o CROSS JOIN jobs j
WHERE o.pos = n.key AND coalesce(j.user_id, '') = o.owner AND j.name = n.value
LIMIT 1;

-- name: insert_jobs
INSERT INTO jobs ({job_columns}) VALUES ({job_values}) ON CONFLICT DO NOTHING;

-- name: insert_new_jobs
-- insert_jobs for new jobs whose later fields are all at their defaults: the table's
-- defaults fill those columns.
INSERT INTO jobs ({job_add_columns}) VALUES ({job_add_values}) ON CONFLICT DO NOTHING;

-- name: claim_due_jobs
SELECT {job_columns} FROM jobs WHERE due_at <= :until ORDER BY due_at LIMIT :limit;

-- name: update_jobs_runtime
UPDATE jobs SET {job_runtime_assign} WHERE id = :id;

-- name: delete_jobs
DELETE FROM jobs WHERE id IN (SELECT value FROM json_each(:ids));

-- name: release_orphaned_jobs
UPDATE jobs SET running_run_id = NULL, running_count = 0
WHERE (running_run_id IS NOT NULL OR running_count > 0)
  AND NOT EXISTS (SELECT 1 FROM runs WHERE runs.job_id = jobs.id AND runs.status = 'running');

-- name: jobs_missing_next_run
SELECT {job_columns} FROM jobs
WHERE enabled = 1 AND next_run_at IS NULL AND schedule_kind <> 'one_shot';

-- ------------------------------------------------------------------------------- runs
-- name: insert_runs
-- An occurrence already recorded (the runs_occurrence index) is left alone: the claim that
-- inserted it first won, and this one drops the run it planned.
INSERT INTO runs ({run_columns}) VALUES ({run_values})
ON CONFLICT (job_id, scheduled_for, attempt) WHERE trigger <> 'manual' AND status <> 'held'
DO NOTHING;

-- name: insert_started_runs
-- insert_runs for runs that start with nothing else to say: only the columns a start sets.
INSERT INTO runs ({run_start_columns}) VALUES ({run_start_values})
ON CONFLICT (job_id, scheduled_for, attempt) WHERE trigger <> 'manual' AND status <> 'held'
DO NOTHING;

-- name: list_running_runs
-- Named: without statistics the planner walks every run newest-first for the few running.
SELECT {run_columns} FROM runs INDEXED BY runs_leases WHERE status = 'running'
ORDER BY seq DESC LIMIT :limit;

-- name: runs_present
SELECT id FROM runs WHERE id IN (SELECT value FROM json_each(:ids));

-- name: lock_held_runs
-- A completion of runs this store object claimed: only what may have changed since.
SELECT id, status, lease_owner, lease_expires_at, lease_renewed_at FROM runs
WHERE id IN (SELECT value FROM json_each(:ids));

-- name: lock_runs
SELECT {run_columns} FROM runs WHERE id IN (SELECT value FROM json_each(:ids));

-- name: finish_runs
UPDATE runs SET {run_result_assign} WHERE id = :id;

-- name: prune_job_runs
DELETE FROM runs WHERE seq IN (
    SELECT seq FROM (
        SELECT seq, status, row_number() OVER (PARTITION BY job_id ORDER BY seq DESC) AS newer
        FROM runs WHERE job_id IN (SELECT value FROM json_each(:job_ids))
    ) WHERE newer > :keep AND status <> 'running'
);

-- name: renew_leases
UPDATE runs SET lease_expires_at = :until, lease_renewed_at = :now
WHERE lease_owner = :owner AND status = 'running'
  AND (:all OR id IN (SELECT value FROM json_each(:ids)))
RETURNING id;

-- name: expired_runs
SELECT {run_columns} FROM runs
WHERE status = 'running'
  AND (lease_expires_at < :now OR lease_owner IN (SELECT value FROM json_each(:dead)))
  AND id NOT IN (SELECT value FROM json_each(:held));

-- name: analyze
PRAGMA optimize;

-- ---------------------------------------------------------------------- conversations
-- name: insert_messages
INSERT INTO messages (session_id, role, content, run_id, created_at)
VALUES (:session_id, :role, :content, :run_id, :created_at);

-- ---------------------------------------------------------------------------- outbox
-- name: lock_delivery_ids
-- nothing to lock: one writer at a time, so ids become visible in order

-- name: insert_deliveries
INSERT INTO deliveries ({delivery_insert_columns}, attempts) VALUES ({delivery_insert_values}, 0)
ON CONFLICT (run_id, destination, event) DO NOTHING;

-- name: claim_deliveries
-- A delivery is due when it is pending past its next attempt (or its sender's lease expired,
-- or its sender is a process of this machine that died) and no older undelivered delivery to
-- the same destination is still waiting or being sent by someone else: one destination's
-- messages go out in order. Only the open deliveries are read (deliveries_open, named: the
-- planner does not see that the OR below implies its condition, and without statistics it
-- scanned every delivery ever made, on the writer's thread).
UPDATE deliveries SET status = 'sending', lease_owner = :owner, lease_expires_at = :until,
       attempts = attempts + 1
WHERE id IN (
    SELECT d.id FROM deliveries d INDEXED BY deliveries_open
    WHERE d.status IN ('pending', 'sending')
      AND ((d.status = 'pending' AND d.next_attempt_at <= :now)
           OR (d.status = 'sending' AND (d.lease_expires_at < :now
                                         OR d.lease_owner IN (SELECT value FROM json_each(:dead)))))
      AND (:any OR EXISTS (
            SELECT 1 FROM json_each(:prefixes) p
            WHERE substr(d.destination, 1, length(p.value)) = p.value
              AND (substr(p.value, -1) = ':' OR length(d.destination) = length(p.value)
                   OR substr(d.destination, length(p.value) + 1, 1) = ':')))
      AND NOT EXISTS (
            SELECT 1 FROM deliveries e
            WHERE e.destination = d.destination AND e.id < d.id
              AND e.status IN ('pending', 'sending')
              AND ((e.status = 'pending' AND e.next_attempt_at > :now)
                   OR (e.status = 'sending' AND e.lease_expires_at >= :now
                       AND e.lease_owner NOT IN (SELECT value FROM json_each(:dead)))))
    ORDER BY d.id LIMIT :limit
)
RETURNING {delivery_columns};

-- name: renew_deliveries
UPDATE deliveries SET lease_expires_at = :until
WHERE lease_owner = :owner AND status = 'sending' AND id IN (SELECT value FROM json_each(:ids));

-- name: list_deliveries
SELECT {delivery_columns} FROM deliveries
WHERE id > :since
  AND (:everywhere OR destination IN (SELECT value FROM json_each(:destinations)))
  AND (:prefix IS NULL OR substr(destination, 1, length(:prefix)) = :prefix)
ORDER BY id LIMIT :limit;

-- name: next_delivery_at
SELECT min(t) FROM (
    SELECT next_attempt_at AS t, destination FROM deliveries WHERE status = 'pending'
    UNION ALL
    SELECT lease_expires_at, destination FROM deliveries WHERE status = 'sending'
) WHERE :any OR EXISTS (
    SELECT 1 FROM json_each(:prefixes) p
    WHERE substr(destination, 1, length(p.value)) = p.value
      AND (substr(p.value, -1) = ':' OR length(destination) = length(p.value)
           OR substr(destination, length(p.value) + 1, 1) = ':'));

-- ---------------------------------------------------------------------- coordination
-- name: lock_lease
SELECT name, holder, since, expires_at, state FROM leases WHERE name = :name;

-- name: end_login_sessions
DELETE FROM login_sessions
WHERE token_fingerprint NOT IN (SELECT value FROM json_each(:keep));

-- ------------------------------------------------------------------------------ spend
-- name: add_spend
-- Spend of runs just finished: one row per scope, key and model (summed by the completing
-- transaction) spread here over its day and month (all time is the sum of the months: see
-- usage_rows; one statement per row: BEGIN IMMEDIATE already orders every writer).
INSERT INTO spend (scope, key, period, start_ms, model, runs, prompt_tokens,
                   completion_tokens, cost_pusd, unpriced)
SELECT :scope, :key, p.period, p.start_ms, :model, :runs, :prompt_tokens,
       :completion_tokens, :cost_pusd, :unpriced
FROM (SELECT 'day' AS period, :day_ms AS start_ms UNION ALL SELECT 'month', :month_ms) AS p
WHERE true  -- (an upsert from a SELECT needs a WHERE before its ON CONFLICT)
ON CONFLICT (scope, key, period, start_ms, model) DO UPDATE SET
    runs = spend.runs + excluded.runs,
    prompt_tokens = spend.prompt_tokens + excluded.prompt_tokens,
    completion_tokens = spend.completion_tokens + excluded.completion_tokens,
    cost_pusd = spend.cost_pusd + excluded.cost_pusd,
    unpriced = spend.unpriced + excluded.unpriced;

-- name: spend_for_budgets
-- What the jobs, owners and everyone spent in the periods starting at or after :since (the
-- claim checks the budgets of the jobs it is about to start against it).
SELECT scope, key, period, start_ms, sum(prompt_tokens + completion_tokens), sum(cost_pusd)
FROM spend
WHERE period <> 'all' AND start_ms >= :since
  AND ((scope = 'job' AND key IN (SELECT value FROM json_each(:jobs)))
       OR (scope = 'owner' AND key IN (SELECT value FROM json_each(:owners)))
       OR scope = 'global')
GROUP BY scope, key, period, start_ms;

-- name: owner_timezones
SELECT user_id, timezone FROM user_prefs WHERE user_id IN (SELECT value FROM json_each(:owners));

-- name: database_now
-- the machine's clock as SQLite reads it (the same for every process of this machine)
SELECT CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER);
