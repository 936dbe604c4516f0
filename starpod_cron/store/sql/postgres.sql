-- The PostgreSQL side of what differs between dialects (common.sql holds the rest). Several
-- nodes write at once: rows are locked FOR UPDATE (in id order, so writers never deadlock) or
-- skipped when another claimer holds them (SKIP LOCKED); lists are arrays; a bulk write is
-- one statement over unnest(:rows), which the driver turns into one typed array per column
-- (types read from the catalog of the statement's table at connect).

-- ------------------------------------------------------------------------------- jobs
-- name: lock_job
SELECT {job_columns} FROM jobs WHERE id = :id FOR UPDATE;

-- name: lock_jobs
SELECT {job_columns} FROM jobs WHERE id = ANY(:ids::text[]) ORDER BY id FOR UPDATE;

-- name: lock_owners
-- Serializes adds per owner (READ COMMITTED would let two adds both count 4 of 5): a
-- transaction-scoped advisory lock per user id of this schema, the ids sorted (unnest keeps
-- their order, so two adds never deadlock).
SELECT pg_advisory_xact_lock(hashtextextended('starpod_cron:jobs:' || current_schema() || ':' || o, 0))
FROM unnest(:owners::text[]) AS o;

-- name: owner_job_counts
SELECT user_id, count(*) FROM jobs WHERE user_id = ANY(:owners::text[]) GROUP BY user_id;

-- name: names_taken
-- Asked only after insert_jobs refused a name (rolled back), to say which one.
SELECT j.user_id, j.name FROM unnest(:owners::text[], :names::text[]) AS w(owner, name)
JOIN jobs j ON coalesce(j.user_id, '') = w.owner AND j.name = w.name
LIMIT 1;

-- name: insert_jobs
INSERT INTO jobs ({job_columns}) SELECT * FROM unnest(:rows) ON CONFLICT DO NOTHING;

-- name: insert_new_jobs
-- insert_jobs for new jobs whose later fields are all at their defaults: the table's
-- defaults fill those columns.
INSERT INTO jobs ({job_add_columns}) SELECT * FROM unnest(:rows) ON CONFLICT DO NOTHING;

-- name: claim_due_jobs
-- Rows another claimer has locked are skipped, not waited for: two nodes claim disjoint jobs.
SELECT {job_columns} FROM jobs WHERE due_at <= :until ORDER BY due_at LIMIT :limit
FOR UPDATE SKIP LOCKED;

-- name: update_jobs_runtime
UPDATE jobs AS t SET {job_runtime_assign_v}
FROM unnest(:rows) AS v({job_runtime_columns}, id) WHERE t.id = v.id;

-- name: delete_jobs
DELETE FROM jobs WHERE id = ANY(:ids::text[]);

-- name: release_orphaned_jobs
UPDATE jobs SET running_run_id = NULL, running_count = 0
WHERE id IN (
    SELECT id FROM jobs
    WHERE (running_run_id IS NOT NULL OR running_count > 0)
      AND NOT EXISTS (SELECT 1 FROM runs WHERE runs.job_id = jobs.id AND runs.status = 'running')
    ORDER BY id
    FOR UPDATE SKIP LOCKED
);

-- name: jobs_missing_next_run
SELECT {job_columns} FROM jobs
WHERE enabled AND next_run_at IS NULL AND schedule_kind <> 'one_shot'
FOR UPDATE SKIP LOCKED;

-- ------------------------------------------------------------------------------- runs
-- name: insert_runs
-- An occurrence already recorded (the runs_occurrence index) is another claimer's, committed
-- first: this claim lost the race and drops the run it planned (no error, no retry).
INSERT INTO runs ({run_columns}) SELECT * FROM unnest(:rows)
ON CONFLICT (job_id, scheduled_for, attempt) WHERE trigger <> 'manual' AND status <> 'held'
DO NOTHING;

-- name: insert_started_runs
-- insert_runs for runs that start with nothing else to say: only the columns a start sets.
INSERT INTO runs ({run_start_columns}) SELECT * FROM unnest(:rows)
ON CONFLICT (job_id, scheduled_for, attempt) WHERE trigger <> 'manual' AND status <> 'held'
DO NOTHING;

-- name: list_running_runs
SELECT {run_columns} FROM runs WHERE status = 'running' ORDER BY seq DESC LIMIT :limit;

-- name: runs_present
SELECT id FROM runs WHERE id = ANY(:ids::text[]);

-- name: lock_held_runs
-- A completion of runs this store object claimed: only what may have changed since.
SELECT id, status, lease_owner, lease_expires_at, lease_renewed_at FROM runs
WHERE id = ANY(:ids::text[]) ORDER BY id FOR UPDATE;

-- name: lock_runs
SELECT {run_columns} FROM runs WHERE id = ANY(:ids::text[]) ORDER BY id FOR UPDATE;

-- name: finish_runs
UPDATE runs AS t SET {run_result_assign_v}
FROM unnest(:rows) AS v({run_result_columns}, id) WHERE t.id = v.id;

-- name: prune_job_runs
DELETE FROM runs WHERE seq IN (
    SELECT seq FROM (
        SELECT seq, status, row_number() OVER (PARTITION BY job_id ORDER BY seq DESC) AS newer
        FROM runs WHERE job_id = ANY(:job_ids::text[])
    ) AS ranked WHERE newer > :keep AND status <> 'running'
);

-- name: renew_leases
-- Rows are locked in id order, like every other writer of runs (completions, recovery): two
-- writers of the same runs then wait for each other but never deadlock.
UPDATE runs SET lease_expires_at = :until, lease_renewed_at = :now
WHERE id IN (
    SELECT id FROM runs
    WHERE lease_owner = :owner AND status = 'running' AND (:all OR id = ANY(:ids::text[]))
    ORDER BY id
    FOR UPDATE
)
RETURNING id;

-- name: expired_runs
SELECT {run_columns} FROM runs
WHERE status = 'running'
  AND (lease_expires_at < :now OR lease_owner = ANY(:dead::text[]))
  AND NOT (id = ANY(:held::text[]))
ORDER BY id
FOR UPDATE SKIP LOCKED;

-- name: analyze
ANALYZE jobs, runs, deliveries, messages, sessions;

-- ---------------------------------------------------------------------- conversations
-- name: insert_messages
INSERT INTO messages (session_id, role, content, run_id, created_at)
SELECT * FROM unnest(:rows);

-- ---------------------------------------------------------------------------- outbox
-- name: lock_delivery_ids
-- Held to commit by every transaction that inserts deliveries: ids then become visible in
-- id order, so a reader tailing events by id never skips one that commits late.
SELECT pg_advisory_xact_lock(hashtextextended('starpod_cron:deliveries:' || current_schema(), 0));

-- name: insert_deliveries
INSERT INTO deliveries ({delivery_insert_columns}, attempts)
SELECT v.*, 0 FROM unnest(:rows) AS v
ON CONFLICT (run_id, destination, event) DO NOTHING;

-- name: claim_deliveries
-- Due deliveries, oldest first, never overtaking an older undelivered one to the same
-- destination; a destination is claimed by one transaction at a time (its advisory lock), so
-- two nodes never send to one chat at once, and the claimed rows themselves are skipped by
-- other claimers (SKIP LOCKED).
WITH due AS (
    SELECT d.id FROM deliveries d
    WHERE ((d.status = 'pending' AND d.next_attempt_at <= :now)
           OR (d.status = 'sending' AND (d.lease_expires_at < :now
                                         OR d.lease_owner = ANY(:dead::text[]))))
      AND (:any OR EXISTS (
            SELECT 1 FROM unnest(:prefixes::text[]) AS p(prefix)
            WHERE starts_with(d.destination, p.prefix)
              AND (right(p.prefix, 1) = ':' OR length(d.destination) = length(p.prefix)
                   OR substr(d.destination, length(p.prefix) + 1, 1) = ':')))
      AND NOT EXISTS (
            SELECT 1 FROM deliveries e
            WHERE e.destination = d.destination AND e.id < d.id
              AND e.status IN ('pending', 'sending')
              AND ((e.status = 'pending' AND e.next_attempt_at > :now)
                   OR (e.status = 'sending' AND e.lease_expires_at >= :now
                       AND NOT e.lease_owner = ANY(:dead::text[]))))
      AND pg_try_advisory_xact_lock(
            hashtextextended('starpod_cron:destination:' || current_schema() || d.destination, 0))
    ORDER BY d.id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
-- A row SKIP LOCKED passed over (another node's transaction writing it: a renewal, a finish)
-- is still an older undelivered one: nothing after it is taken now, or two nodes would send
-- to one chat out of order (found by bench.chaos).
UPDATE deliveries SET status = 'sending', lease_owner = :owner, lease_expires_at = :until,
       attempts = deliveries.attempts + 1
FROM due WHERE deliveries.id = due.id
  AND NOT EXISTS (
        SELECT 1 FROM deliveries e
        WHERE e.destination = deliveries.destination AND e.id < deliveries.id
          AND e.status IN ('pending', 'sending')
          AND e.id NOT IN (SELECT id FROM due))
RETURNING {delivery_columns_qualified};

-- name: renew_deliveries
UPDATE deliveries SET lease_expires_at = :until
WHERE lease_owner = :owner AND status = 'sending' AND id = ANY(:ids::bigint[]);

-- name: list_deliveries
SELECT {delivery_columns} FROM deliveries
WHERE id > :since
  AND (:everywhere OR destination = ANY(:destinations::text[]))
  AND (:prefix::text IS NULL OR starts_with(destination, :prefix))
ORDER BY id LIMIT :limit;

-- name: next_delivery_at
SELECT min(t) FROM (
    SELECT next_attempt_at AS t, destination FROM deliveries WHERE status = 'pending'
    UNION ALL
    SELECT lease_expires_at, destination FROM deliveries WHERE status = 'sending'
) AS open
WHERE :any OR EXISTS (
    SELECT 1 FROM unnest(:prefixes::text[]) AS p(prefix)
    WHERE starts_with(destination, p.prefix)
      AND (right(p.prefix, 1) = ':' OR length(destination) = length(p.prefix)
           OR substr(destination, length(p.prefix) + 1, 1) = ':'));

-- ---------------------------------------------------------------------- coordination
-- name: lock_lease
SELECT name, holder, since, expires_at, state FROM leases WHERE name = :name FOR UPDATE;

-- name: end_login_sessions
DELETE FROM login_sessions WHERE NOT (token_fingerprint = ANY(:keep::text[]));

-- --------------------------------------------------------------- the driver's own
-- name: notify
SELECT pg_notify(:channel, :topic);

-- name: column_types
-- Every column's type, for the typed arrays of unnest(:rows): read at connect, never listed
-- by hand, so a new column needs only its migration.
SELECT c.relname, a.attname, format_type(a.atttypid, NULL)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
  AND a.attnum > 0 AND NOT a.attisdropped;

-- name: migrate_lock
SELECT pg_advisory_xact_lock(hashtextextended('starpod_cron:migrate:' || current_schema(), 0));

-- name: schema_table
CREATE TABLE IF NOT EXISTS starpod_cron_schema (version integer NOT NULL);

-- name: schema_version
SELECT coalesce(max(version), 0) FROM starpod_cron_schema;

-- name: record_version
INSERT INTO starpod_cron_schema (version) VALUES (:version);

-- name: current_schema
SELECT current_schema();

-- ------------------------------------------------------------------------------ spend
-- name: add_spend
-- Spend of runs just finished: one row per scope, key and model (summed by the completing
-- transaction) spread here over its day and month (all time is the sum of the months: see
-- usage_rows). Locked in (scope, key, model, period, start) order, the order of the rows
-- sent: two nodes finishing runs of the same owner lock the same rows in the same order.
INSERT INTO spend (scope, key, period, start_ms, model, runs, prompt_tokens,
                   completion_tokens, cost_pusd, unpriced)
SELECT v.scope, v.key, p.period, p.start_ms, v.model, sum(v.runs)::bigint,
       sum(v.prompt_tokens)::bigint, sum(v.completion_tokens)::bigint,
       sum(v.cost_pusd)::bigint, sum(v.unpriced)::bigint
FROM unnest(:rows) AS v({spend_columns})
CROSS JOIN LATERAL (VALUES ('day', v.day_ms), ('month', v.month_ms)) AS p(period, start_ms)
GROUP BY v.scope, v.key, v.model, p.period, p.start_ms
ORDER BY v.scope, v.key, v.model, p.period, p.start_ms
ON CONFLICT (scope, key, period, start_ms, model) DO UPDATE SET
    runs = spend.runs + excluded.runs,
    prompt_tokens = spend.prompt_tokens + excluded.prompt_tokens,
    completion_tokens = spend.completion_tokens + excluded.completion_tokens,
    cost_pusd = spend.cost_pusd + excluded.cost_pusd,
    unpriced = spend.unpriced + excluded.unpriced;

-- name: spend_for_budgets
-- What the jobs, owners and everyone spent in the periods starting at or after :since (the
-- claim checks the budgets of the jobs it is about to start against it: committed spend).
SELECT scope, key, period, start_ms, sum(prompt_tokens + completion_tokens)::bigint,
       sum(cost_pusd)::bigint
FROM spend
WHERE period <> 'all' AND start_ms >= :since
  AND ((scope = 'job' AND key = ANY(:jobs::text[]))
       OR (scope = 'owner' AND key = ANY(:owners::text[]))
       OR scope = 'global')
GROUP BY scope, key, period, start_ms;

-- name: owner_timezones
SELECT user_id, timezone FROM user_prefs WHERE user_id = ANY(:owners::text[]);

-- name: database_now
-- the server's clock, not the transaction's start (the one clock every node agrees on)
SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
