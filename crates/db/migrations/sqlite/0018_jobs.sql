-- The job service's durable jobs (crates/jobs): claimed by one replica at a time under a
-- lease that its holder renews, taken over when the lease runs out, retried with backoff.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    parameters TEXT NOT NULL,
    -- Harbor's statuses: Pending, Running, Success, Error, Stopped.
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    -- Not claimed before (milliseconds since the epoch): a retry's backoff.
    run_after BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    log TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX jobs_claimable ON jobs(status, run_after);
CREATE INDEX jobs_by_kind ON jobs(kind, id);
