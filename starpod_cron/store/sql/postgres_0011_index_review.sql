-- starpod-cron schema version 11 (PostgreSQL): every index reviewed against the queries using
-- it (tests/store/test_query_plans.py checks the hot ones). No data changes.
-- Claims and completions change due_at (an indexed generated column), so their job updates are
-- never HOT: each one writes an entry into every index of jobs. The unique owner-name key now
-- leads with the name, so it also serves lookups and lists by name and jobs_name goes.
DROP INDEX jobs_owner_name;
DROP INDEX jobs_name;
CREATE UNIQUE INDEX jobs_owner_name ON jobs (name, (coalesce(user_id, '')));
-- Pruning runs by age (count/delete_old_runs, maintenance) scans runs instead, as on SQLite
-- since its schema version 3: the index cost every completion an extra b-tree write.
DROP INDEX runs_completed;
-- No query reads deliveries by (destination, id) without also asking for open ones, which
-- deliveries_open (the same key, pending and sending rows only) serves.
DROP INDEX deliveries_destination;
-- No query looks log-in sessions up by token fingerprint.
DROP INDEX login_sessions_token;
