-- PostgreSQL: the SQLite script of the same number with identity keys, BYTEA and byte-order ("C")
-- collation on text, so that listings sort as they do on SQLite.
-- Leases for work that must run once per cluster (maintenance now; GC, retention and scans
-- later): who holds each, and until when (milliseconds since the epoch).
CREATE TABLE leases (
    name TEXT COLLATE "C" PRIMARY KEY,
    holder TEXT COLLATE "C" NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX uploads_by_update ON uploads(updated_at);
