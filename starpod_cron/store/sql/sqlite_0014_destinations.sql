-- starpod-cron schema version 14 (SQLite): where a job's results also go.
-- Per job: deliver_to and alerts_to (NULL: none), JSON arrays of destination entries ([destinations.NAME],
-- telegram:CHAT_ID[:THREAD_ID], email:ADDRESS).
ALTER TABLE jobs ADD COLUMN deliver_to TEXT;
ALTER TABLE jobs ADD COLUMN alerts_to TEXT;
