-- starpod-cron schema version 4 (PostgreSQL): dashboard log-in sessions (not the conversations in
-- `sessions`). The browser's cookie holds a random 128-bit id; only its SHA-256 is kept here,
-- with who logged in, through which gateway token (its fingerprint: removing the token from
-- [gateway.tokens] ends its sessions), and when the session started, ends and was last used.
CREATE TABLE login_sessions (
    id_hash            text PRIMARY KEY,
    user_id            text NOT NULL,
    token_fingerprint  text NOT NULL,
    created_at         bigint NOT NULL,
    expires_at         bigint NOT NULL,
    last_used_at       bigint NOT NULL
);
CREATE INDEX login_sessions_expires ON login_sessions (expires_at);
CREATE INDEX login_sessions_token ON login_sessions (token_fingerprint);
