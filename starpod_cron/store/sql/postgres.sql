-- Queries of the PostgreSQL store, loaded by name. {job_columns} and friends expand to the
-- column lists of starpod_cron.store.records; parameters are asyncpg's $1, $2, ...

-- name: insert_job
INSERT INTO jobs ({job_columns}) VALUES ({job_placeholders});

-- name: update_job_state
UPDATE jobs SET {job_state_assignments} WHERE id = ${job_state_id};

-- name: delete_job
DELETE FROM jobs WHERE id = $1;

-- name: delete_job_runs
DELETE FROM runs WHERE job_id = $1;

-- name: get_job
SELECT {job_columns} FROM jobs WHERE id = $1;

-- name: lock_job
SELECT {job_columns} FROM jobs WHERE id = $1 FOR UPDATE;

-- name: get_job_by_name
SELECT {job_columns} FROM jobs WHERE coalesce(user_id, '') = coalesce($2, '') AND name = $1;

-- name: find_jobs_by_name
SELECT {job_columns} FROM jobs WHERE name = $1 ORDER BY user_id IS NOT NULL, user_id;

-- name: lock_jobs
SELECT {job_columns} FROM jobs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE;

-- name: names_taken
SELECT j.user_id, j.name FROM unnest($1::text[], $2::text[]) AS w(owner, name)
JOIN jobs j ON coalesce(j.user_id, '') = w.owner AND j.name = w.name
LIMIT 1;

-- name: lock_owners
-- Serializes adds per owner (READ COMMITTED would let two adds both count 4 of 5): a
-- transaction-scoped advisory lock per user id, $1 the store's channel (one per schema), $2
-- the user ids sorted (unnest keeps their order, so two adds never deadlock).
SELECT pg_advisory_xact_lock(hashtextextended($1 || ':jobs:' || o, 0))
FROM unnest($2::text[]) AS o;

-- name: owner_job_counts
SELECT user_id, count(*) FROM jobs WHERE user_id = ANY($1::text[]) GROUP BY user_id;

-- name: list_jobs
SELECT {job_columns} FROM jobs ORDER BY name, user_id IS NOT NULL, user_id;

-- name: list_jobs_for_user
SELECT {job_columns} FROM jobs WHERE user_id = $1 ORDER BY name;

-- name: select_due
SELECT {job_columns} FROM jobs WHERE due_at <= $1 ORDER BY due_at LIMIT $2;

-- name: claim_due_jobs
-- Rows another claimer has locked are skipped, not waited for: two nodes claim disjoint jobs.
SELECT {job_columns} FROM jobs WHERE due_at <= $1 ORDER BY due_at LIMIT $2
FOR UPDATE SKIP LOCKED;

-- name: next_due_at
SELECT min(due_at) FROM jobs WHERE due_at IS NOT NULL;

-- name: insert_run
INSERT INTO runs ({run_columns}) VALUES ({run_placeholders});

-- name: update_job_runtime
UPDATE jobs SET {job_runtime_assignments} WHERE id = ${job_runtime_id};

-- name: get_run
SELECT {run_columns} FROM runs WHERE id = $1;

-- name: lock_runs
SELECT {run_columns} FROM runs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE;

-- name: list_runs
SELECT {run_columns} FROM runs WHERE job_id = $1 ORDER BY seq DESC LIMIT $2;

-- name: list_recent_runs
SELECT {run_columns} FROM runs
WHERE ($1::text IS NULL OR job_id = $1) AND ($2::text IS NULL OR status = $2)
ORDER BY seq DESC LIMIT $3;

-- name: count_old_runs
SELECT count(*) FROM runs WHERE completed_at IS NOT NULL AND completed_at < $1;

-- name: delete_old_runs
DELETE FROM runs WHERE completed_at IS NOT NULL AND completed_at < $1;

-- name: renew_leases
-- Rows are locked in id order, like every other writer of runs (completions, recovery): two
-- writers of the same runs then wait for each other but never deadlock.
UPDATE runs SET lease_expires_at = $1, lease_renewed_at = $2
WHERE id IN (
    SELECT id FROM runs
    WHERE lease_owner = $3 AND status = 'running' AND ($4 OR id = ANY($5::text[]))
    ORDER BY id
    FOR UPDATE
)
RETURNING id;

-- name: running_owners
SELECT DISTINCT lease_owner FROM runs WHERE status = 'running' AND lease_owner IS NOT NULL;

-- name: expired_runs
SELECT {run_columns} FROM runs
WHERE status = 'running'
  AND (lease_expires_at < $1 OR lease_owner = ANY($2::text[]))
  AND NOT (id = ANY($3::text[]))
ORDER BY id
FOR UPDATE SKIP LOCKED;

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

-- name: get_session_by_key
SELECT id FROM sessions WHERE key = $1;

-- name: insert_session
INSERT INTO sessions (id, key, created_at, updated_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (key) DO NOTHING;

-- name: session_messages
SELECT role, content, run_id, created_at FROM (
    SELECT seq, role, content, run_id, created_at FROM messages
    WHERE session_id = $1 ORDER BY seq DESC LIMIT $2
) AS newest ORDER BY seq;

-- name: insert_message
INSERT INTO messages (session_id, role, content, run_id, created_at) VALUES ($1, $2, $3, $4, $5);

-- name: touch_session
UPDATE sessions SET updated_at = $1 WHERE id = $2;

-- name: trim_messages
DELETE FROM messages
WHERE session_id = $1 AND seq < (
    SELECT seq FROM messages WHERE session_id = $1 ORDER BY seq DESC OFFSET $2 - 1 LIMIT 1
);

-- name: lock_delivery_ids
-- Held to commit by every transaction that inserts deliveries: ids then become visible in
-- id order, so a reader tailing events by id never skips one that commits late.
SELECT pg_advisory_xact_lock(hashtextextended('starpod_cron:deliveries:' || current_schema(), 0));

-- name: sending_owners
SELECT DISTINCT lease_owner FROM deliveries WHERE status = 'sending';

-- name: claim_deliveries
-- Due deliveries, oldest first, never overtaking an older undelivered one to the same
-- destination; a destination is claimed by one transaction at a time (its advisory lock), so
-- two nodes never send to one chat at once, and the claimed rows themselves are skipped by
-- other claimers (SKIP LOCKED).
WITH due AS (
    SELECT d.id FROM deliveries d
    WHERE ((d.status = 'pending' AND d.next_attempt_at <= $1)
           OR (d.status = 'sending' AND (d.lease_expires_at < $1
                                         OR d.lease_owner = ANY($7::text[]))))
      AND ($2 OR EXISTS (
            SELECT 1 FROM unnest($3::text[]) AS p(prefix)
            WHERE starts_with(d.destination, p.prefix)))
      AND NOT EXISTS (
            SELECT 1 FROM deliveries e
            WHERE e.destination = d.destination AND e.id < d.id
              AND e.status IN ('pending', 'sending')
              AND ((e.status = 'pending' AND e.next_attempt_at > $1)
                   OR (e.status = 'sending' AND e.lease_expires_at >= $1
                       AND NOT e.lease_owner = ANY($7::text[]))))
      AND pg_try_advisory_xact_lock(
            hashtextextended('starpod_cron:destination:' || current_schema() || d.destination, 0))
    ORDER BY d.id
    LIMIT $4
    FOR UPDATE SKIP LOCKED
)
UPDATE deliveries SET status = 'sending', lease_owner = $5, lease_expires_at = $6,
       attempts = deliveries.attempts + 1
FROM due WHERE deliveries.id = due.id
RETURNING {delivery_columns_qualified};

-- name: finish_delivery
UPDATE deliveries SET status = $1, next_attempt_at = $2, last_error = $3, delivered_at = $4,
       attempts = attempts - $5, lease_owner = NULL, lease_expires_at = NULL
WHERE id = $6 AND status = 'sending' AND lease_owner = $7;

-- name: delivery_progress
UPDATE deliveries SET progress = $1 WHERE id = $2 AND status = 'sending' AND lease_owner = $3;

-- name: list_deliveries
SELECT {delivery_columns} FROM deliveries
WHERE id > $1
  AND ($2 OR destination = ANY($3::text[]))
  AND ($4::text IS NULL OR starts_with(destination, $4))
ORDER BY id LIMIT $5;

-- name: next_delivery_at
SELECT min(t) FROM (
    SELECT next_attempt_at AS t, destination FROM deliveries WHERE status = 'pending'
    UNION ALL
    SELECT lease_expires_at, destination FROM deliveries WHERE status = 'sending'
) AS open
WHERE $1 OR EXISTS (
    SELECT 1 FROM unnest($2::text[]) AS p(prefix) WHERE starts_with(destination, p.prefix));

-- name: get_user_timezone
SELECT timezone FROM user_prefs WHERE user_id = $1;

-- name: set_user_timezone
INSERT INTO user_prefs (user_id, timezone, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (user_id) DO UPDATE SET timezone = excluded.timezone, updated_at = excluded.updated_at;

-- name: notify
SELECT pg_notify($1, $2);

-- name: get_lease_for_update
SELECT name, holder, since, expires_at, state FROM leases WHERE name = $1 FOR UPDATE;

-- name: insert_lease
INSERT INTO leases (name, holder, since, expires_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (name) DO NOTHING;

-- name: update_lease
UPDATE leases SET holder = $2, since = $3, expires_at = $4 WHERE name = $1;

-- name: save_lease_state
UPDATE leases SET state = $1 WHERE name = $2 AND holder = $3 AND expires_at > $4;

-- name: release_lease
UPDATE leases SET expires_at = $1 WHERE name = $2 AND holder = $3 AND expires_at > $4;

-- name: list_leases
SELECT name, holder, since, expires_at, state FROM leases ORDER BY name;

-- name: heartbeat
INSERT INTO nodes (id, host, pid, version, started_at, last_seen, heartbeat_ms, stopped_at, roles)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen,
                               heartbeat_ms = excluded.heartbeat_ms,
                               stopped_at = excluded.stopped_at, roles = excluded.roles;

-- name: forget_nodes
DELETE FROM nodes WHERE last_seen < $1;

-- name: list_nodes
SELECT id, host, pid, version, started_at, last_seen, heartbeat_ms, stopped_at, roles
FROM nodes WHERE last_seen >= $1 ORDER BY started_at DESC, id;

-- name: last_delivery_id
SELECT coalesce(max(id), 0) FROM deliveries;

-- name: renew_deliveries
UPDATE deliveries SET lease_expires_at = $1
WHERE lease_owner = $2 AND status = 'sending' AND id = ANY($3::bigint[]);

-- name: count_deliveries
SELECT status, count(*) FROM deliveries GROUP BY status;

-- name: deliveries_with_status
SELECT {delivery_columns} FROM deliveries WHERE status = $1 ORDER BY id DESC LIMIT $2;

-- name: retry_delivery
UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, lease_owner = NULL,
       lease_expires_at = NULL
WHERE id = $2 AND status = 'dead';

-- name: run_stats
SELECT job_id, count(*), sum(CASE WHEN status IN ('failed', 'timeout') THEN 1 ELSE 0 END),
       coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0),
       (SELECT r.duration_ms FROM runs r
        WHERE r.job_id = runs.job_id AND r.duration_ms IS NOT NULL
        ORDER BY r.seq DESC LIMIT 1)
FROM runs GROUP BY job_id;

-- name: count_old_messages
SELECT count(*) FROM messages WHERE created_at < $1;

-- name: delete_old_messages
DELETE FROM messages WHERE created_at < $1;

-- name: count_old_deliveries
SELECT count(*) FROM deliveries
WHERE created_at < $1 AND status IN ('delivered', 'dead', 'published');

-- name: delete_old_deliveries
DELETE FROM deliveries WHERE created_at < $1 AND status IN ('delivered', 'dead', 'published');

-- name: insert_login_session
INSERT INTO login_sessions
    (id_hash, user_id, token_fingerprint, created_at, expires_at, last_used_at)
VALUES ($1, $2, $3, $4, $5, $6);

-- name: get_login_session
SELECT user_id, token_fingerprint, created_at, expires_at, last_used_at
FROM login_sessions WHERE id_hash = $1 AND expires_at > $2;

-- name: touch_login_session
UPDATE login_sessions SET last_used_at = $1 WHERE id_hash = $2 AND last_used_at < $3;

-- name: delete_login_session
DELETE FROM login_sessions WHERE id_hash = $1;

-- name: end_login_sessions
DELETE FROM login_sessions WHERE NOT (token_fingerprint = ANY($1::text[]));

-- name: delete_expired_login_sessions
DELETE FROM login_sessions WHERE expires_at <= $1;

-- name: refuse_destination
-- One more refusal in a row (the first one opens the row); the caller sets retry_at next.
INSERT INTO destination_refusals (name, since, retry_at, failures, error)
VALUES ($1, $2, $2, 1, $3)
ON CONFLICT (name) DO UPDATE SET failures = destination_refusals.failures + 1,
                                 error = excluded.error
RETURNING since, failures;

-- name: destination_retry_at
UPDATE destination_refusals SET retry_at = $1 WHERE name = $2;

-- name: take_destination_probe
UPDATE destination_refusals SET retry_at = $1 WHERE name = $2 AND retry_at <= $3;

-- name: clear_destination
DELETE FROM destination_refusals WHERE name = $1;

-- name: refusing_destinations
SELECT name, since, retry_at, failures, error FROM destination_refusals ORDER BY name;
