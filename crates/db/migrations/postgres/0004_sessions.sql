-- PostgreSQL: the SQLite script of the same number with identity keys, BYTEA and byte-order ("C")
-- collation on text, so that listings sort as they do on SQLite.
-- Portal sessions: the SHA-256 of the session id (never the id itself), its user, the CSRF
-- token that mutating requests must echo, and when it ends (milliseconds since the epoch).
CREATE TABLE sessions (
    id_hash TEXT COLLATE "C" PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT COLLATE "C" NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions(expires_at);
