-- Queries of the SQLite store, loaded by name. {job_columns} and {run_columns} expand to the
-- column lists of starpod_cron.store.records. Lists are passed as JSON arrays (json_each).

-- name: insert_job
INSERT INTO jobs ({job_columns}) VALUES ({job_placeholders});

-- name: update_job_state
UPDATE jobs SET {job_state_assignments} WHERE id = ?;

-- name: delete_job
DELETE FROM jobs WHERE id = ?;

-- name: delete_job_runs
DELETE FROM runs WHERE job_id = ?;

-- name: get_job
SELECT {job_columns} FROM jobs WHERE id = ?;

-- name: get_job_by_name
SELECT {job_columns} FROM jobs WHERE ifnull(user_id, '') = ifnull(:user_id, '') AND name = :name;

-- name: find_jobs_by_name
SELECT {job_columns} FROM jobs WHERE name = ? ORDER BY user_id IS NOT NULL, user_id;

-- name: get_jobs_by_ids
SELECT {job_columns} FROM jobs WHERE id IN (SELECT value FROM json_each(?));

-- name: names_taken
-- ? is a JSON array of [owner-or-empty, name] pairs.
SELECT j.user_id, j.name FROM json_each(?) AS w
JOIN jobs j ON ifnull(j.user_id, '') = json_extract(w.value, '$[0]')
           AND j.name = json_extract(w.value, '$[1]');

-- name: owner_job_counts
-- ? is a JSON array of user ids; in the add's BEGIN IMMEDIATE transaction (one writer at a
-- time), so the count and the insert that follows cannot interleave with another add.
SELECT user_id, count(*) FROM jobs
WHERE user_id IN (SELECT value FROM json_each(?)) GROUP BY user_id;

-- name: list_jobs
SELECT {job_columns} FROM jobs ORDER BY name, user_id IS NOT NULL, user_id;

-- name: list_jobs_for_user
SELECT {job_columns} FROM jobs WHERE user_id = ? ORDER BY name;

-- name: select_due
SELECT {job_columns} FROM jobs WHERE due_at <= ? ORDER BY due_at LIMIT ?;

-- name: next_due_at
SELECT min(due_at) FROM jobs WHERE due_at IS NOT NULL;

-- name: insert_run
INSERT INTO runs ({run_columns}) VALUES ({run_placeholders});

-- name: update_job_runtime
UPDATE jobs SET {job_runtime_assignments} WHERE id = ?;

-- name: finish_run
UPDATE runs SET {run_result_assignments} WHERE id = ?;

-- name: get_run
SELECT {run_columns} FROM runs WHERE id = ?;

-- name: get_runs_by_ids
SELECT {run_columns} FROM runs WHERE id IN (SELECT value FROM json_each(?));

-- name: list_runs
SELECT {run_columns} FROM runs WHERE job_id = ? ORDER BY seq DESC LIMIT ?;

-- name: list_recent_runs
SELECT {run_columns} FROM runs
WHERE (:job_id IS NULL OR job_id = :job_id) AND (:status IS NULL OR status = :status)
ORDER BY seq DESC LIMIT :limit;

-- name: prune_job_runs
DELETE FROM runs
WHERE job_id = :job_id AND status <> 'running' AND seq < (
    SELECT seq FROM runs WHERE job_id = :job_id ORDER BY seq DESC LIMIT 1 OFFSET :keep - 1
);

-- name: count_old_runs
SELECT count(*) FROM runs WHERE completed_at IS NOT NULL AND completed_at < ?;

-- name: delete_old_runs
DELETE FROM runs WHERE completed_at IS NOT NULL AND completed_at < ?;

-- name: renew_leases
UPDATE runs SET lease_expires_at = :until, lease_renewed_at = :now
WHERE lease_owner = :owner AND status = 'running'
  AND (:all OR id IN (SELECT value FROM json_each(:ids)))
RETURNING id;

-- name: running_owners
SELECT DISTINCT lease_owner FROM runs WHERE status = 'running' AND lease_owner IS NOT NULL;

-- name: expired_runs
SELECT {run_columns} FROM runs
WHERE status = 'running'
  AND (lease_expires_at < :now OR lease_owner IN (SELECT value FROM json_each(:dead)))
  AND id NOT IN (SELECT value FROM json_each(:held));

-- name: release_orphaned_jobs
UPDATE jobs SET running_run_id = NULL, running_count = 0
WHERE (running_run_id IS NOT NULL OR running_count > 0)
  AND NOT EXISTS (SELECT 1 FROM runs WHERE runs.job_id = jobs.id AND runs.status = 'running');

-- name: jobs_missing_next_run
SELECT {job_columns} FROM jobs
WHERE enabled = 1 AND next_run_at IS NULL AND schedule_kind <> 'one_shot';

-- name: get_session_by_key
SELECT id FROM sessions WHERE key = ?;

-- name: insert_session
INSERT INTO sessions (id, key, created_at, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (key) DO NOTHING;

-- name: session_messages
SELECT role, content, run_id, created_at FROM (
    SELECT seq, role, content, run_id, created_at FROM messages
    WHERE session_id = ? ORDER BY seq DESC LIMIT ?
) ORDER BY seq;

-- name: insert_message
INSERT INTO messages (session_id, role, content, run_id, created_at) VALUES (?, ?, ?, ?, ?);

-- name: touch_session
UPDATE sessions SET updated_at = ? WHERE id = ?;

-- name: trim_messages
DELETE FROM messages
WHERE session_id = :session_id AND seq < (
    SELECT seq FROM messages WHERE session_id = :session_id ORDER BY seq DESC LIMIT 1 OFFSET :keep - 1
);

-- name: insert_delivery
INSERT INTO deliveries (run_id, job_id, job_name, destination, payload, next_attempt_at,
                        created_at, status, event, attempts)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)
ON CONFLICT (run_id, destination, event) DO NOTHING;

-- name: sending_owners
SELECT DISTINCT lease_owner FROM deliveries WHERE status = 'sending';

-- name: due_deliveries
-- A delivery is due when it is pending past its next attempt (or its sender's lease expired,
-- or its sender is a process of this machine that died) and no older undelivered delivery to
-- the same destination is still waiting or being sent by someone else: one destination's
-- messages go out in order.
SELECT d.id FROM deliveries d
WHERE ((d.status = 'pending' AND d.next_attempt_at <= :now)
       OR (d.status = 'sending' AND (d.lease_expires_at < :now
                                     OR d.lease_owner IN (SELECT value FROM json_each(:dead)))))
  AND (:any OR EXISTS (
        SELECT 1 FROM json_each(:prefixes) p
        WHERE substr(d.destination, 1, length(p.value)) = p.value))
  AND NOT EXISTS (
        SELECT 1 FROM deliveries e
        WHERE e.destination = d.destination AND e.id < d.id
          AND e.status IN ('pending', 'sending')
          AND ((e.status = 'pending' AND e.next_attempt_at > :now)
               OR (e.status = 'sending' AND e.lease_expires_at >= :now
                   AND e.lease_owner NOT IN (SELECT value FROM json_each(:dead)))))
ORDER BY d.id LIMIT :limit;

-- name: lease_deliveries
UPDATE deliveries SET status = 'sending', lease_owner = ?, lease_expires_at = ?,
       attempts = attempts + 1
WHERE id IN (SELECT value FROM json_each(?))
RETURNING {delivery_columns};

-- name: finish_delivery
UPDATE deliveries SET status = ?, next_attempt_at = ?, last_error = ?, delivered_at = ?,
       attempts = attempts - ?, lease_owner = NULL, lease_expires_at = NULL
WHERE id = ? AND status = 'sending' AND lease_owner = ?;

-- name: delivery_progress
UPDATE deliveries SET progress = ? WHERE id = ? AND status = 'sending' AND lease_owner = ?;

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
    SELECT 1 FROM json_each(:prefixes) p WHERE substr(destination, 1, length(p.value)) = p.value);

-- name: get_user_timezone
SELECT timezone FROM user_prefs WHERE user_id = ?;

-- name: set_user_timezone
INSERT INTO user_prefs (user_id, timezone, updated_at) VALUES (?, ?, ?)
ON CONFLICT (user_id) DO UPDATE SET timezone = excluded.timezone, updated_at = excluded.updated_at;

-- name: get_lease
SELECT name, holder, since, expires_at, state FROM leases WHERE name = ?;

-- name: put_lease
INSERT INTO leases (name, holder, since, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, since = excluded.since,
                                 expires_at = excluded.expires_at;

-- name: save_lease_state
UPDATE leases SET state = ? WHERE name = ? AND holder = ? AND expires_at > ?;

-- name: release_lease
UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND expires_at > ?;

-- name: list_leases
SELECT name, holder, since, expires_at, state FROM leases ORDER BY name;

-- name: heartbeat
INSERT INTO nodes (id, host, pid, version, started_at, last_seen, heartbeat_ms, stopped_at, roles)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen,
                               heartbeat_ms = excluded.heartbeat_ms,
                               stopped_at = excluded.stopped_at, roles = excluded.roles;

-- name: forget_nodes
DELETE FROM nodes WHERE last_seen < ?;

-- name: list_nodes
SELECT id, host, pid, version, started_at, last_seen, heartbeat_ms, stopped_at, roles
FROM nodes WHERE last_seen >= ? ORDER BY started_at DESC, id;

-- name: last_delivery_id
SELECT coalesce(max(id), 0) FROM deliveries;

-- name: renew_deliveries
UPDATE deliveries SET lease_expires_at = ?
WHERE lease_owner = ? AND status = 'sending' AND id IN (SELECT value FROM json_each(?));

-- name: count_deliveries
SELECT status, count(*) FROM deliveries GROUP BY status;

-- name: deliveries_with_status
SELECT {delivery_columns} FROM deliveries WHERE status = ? ORDER BY id DESC LIMIT ?;

-- name: retry_delivery
UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, lease_owner = NULL,
       lease_expires_at = NULL
WHERE id = ? AND status = 'dead';

-- name: run_stats
SELECT job_id, count(*), sum(CASE WHEN status IN ('failed', 'timeout') THEN 1 ELSE 0 END),
       coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0),
       (SELECT r.duration_ms FROM runs r
        WHERE r.job_id = runs.job_id AND r.duration_ms IS NOT NULL
        ORDER BY r.seq DESC LIMIT 1)
FROM runs GROUP BY job_id;

-- name: count_old_messages
SELECT count(*) FROM messages WHERE created_at < ?;

-- name: delete_old_messages
DELETE FROM messages WHERE created_at < ?;

-- name: count_old_deliveries
SELECT count(*) FROM deliveries
WHERE created_at < ? AND status IN ('delivered', 'dead', 'published');

-- name: delete_old_deliveries
DELETE FROM deliveries WHERE created_at < ? AND status IN ('delivered', 'dead', 'published');

-- name: insert_login_session
INSERT INTO login_sessions
    (id_hash, user_id, token_fingerprint, created_at, expires_at, last_used_at)
VALUES (?, ?, ?, ?, ?, ?);

-- name: get_login_session
SELECT user_id, token_fingerprint, created_at, expires_at, last_used_at
FROM login_sessions WHERE id_hash = ? AND expires_at > ?;

-- name: touch_login_session
UPDATE login_sessions SET last_used_at = ? WHERE id_hash = ? AND last_used_at < ?;

-- name: delete_login_session
DELETE FROM login_sessions WHERE id_hash = ?;

-- name: end_login_sessions
DELETE FROM login_sessions
WHERE token_fingerprint NOT IN (SELECT value FROM json_each(?));

-- name: delete_expired_login_sessions
DELETE FROM login_sessions WHERE expires_at <= ?;

-- name: refuse_destination
-- One more refusal in a row (the first one opens the row); the caller sets retry_at next.
INSERT INTO destination_refusals (name, since, retry_at, failures, error) VALUES (?, ?, ?, 1, ?)
ON CONFLICT (name) DO UPDATE SET failures = failures + 1, error = excluded.error
RETURNING since, failures;

-- name: destination_retry_at
UPDATE destination_refusals SET retry_at = ? WHERE name = ?;

-- name: take_destination_probe
UPDATE destination_refusals SET retry_at = ? WHERE name = ? AND retry_at <= ?;

-- name: clear_destination
DELETE FROM destination_refusals WHERE name = ?;

-- name: refusing_destinations
SELECT name, since, retry_at, failures, error FROM destination_refusals ORDER BY name;
