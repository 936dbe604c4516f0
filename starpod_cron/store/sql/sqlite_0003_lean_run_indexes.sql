-- starpod-cron schema version 3 (SQLite): fewer indexes on runs, the hottest table.
-- runs_status and runs_completed cost every claim and completion an extra b-tree write but
-- only helped rare queries (history filtered by status, pruning by age), which now scan runs
-- newest-first instead. No data changes.
DROP INDEX runs_status;
DROP INDEX runs_completed;
