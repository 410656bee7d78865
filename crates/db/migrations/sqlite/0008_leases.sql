-- Leases for work that must run once per cluster (maintenance now; GC, retention and scans
-- later): who holds each, and until when (milliseconds since the epoch).
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX uploads_by_update ON uploads(updated_at);
