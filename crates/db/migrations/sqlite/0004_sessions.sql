-- Portal sessions: the SHA-256 of the session id (never the id itself), its user, the CSRF
-- token that mutating requests must echo, and when it ends (milliseconds since the epoch).
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions(expires_at);
