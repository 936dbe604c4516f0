-- starpod-cron schema version 15 (SQLite): every index reviewed against the queries using it
-- (tests/store/test_query_plans.py checks the hot ones). No data changes.
-- The unique owner-name key leads with the name, so it also serves lookups and lists by name
-- (find_jobs_by_name, list_jobs) and jobs_name goes; it is written with coalesce(), as the
-- queries of both dialects are (an expression index serves only the expression it names).
DROP INDEX jobs_owner_name;
DROP INDEX jobs_name;
CREATE UNIQUE INDEX jobs_owner_name ON jobs (name, coalesce(user_id, ''));
-- No query reads deliveries by (destination, id) without also asking for open ones, which
-- deliveries_open (the same key, pending and sending rows only) serves.
DROP INDEX deliveries_destination;
-- No query looks log-in sessions up by token fingerprint (ending those of removed tokens reads
-- every session anyway).
DROP INDEX login_sessions_token;
