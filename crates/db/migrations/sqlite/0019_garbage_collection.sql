-- Garbage collection (berth-gc) and the job service's schedules.
--
-- A writer of blob bytes pins the digest before it writes and removes the pin in the
-- transaction that records what it wrote; a collection deletes nothing pinned. A pin left by a
-- process that died counts for an hour (PIN_LEASE in db::gc), then is ignored.
CREATE TABLE blob_pins (
    id INTEGER PRIMARY KEY,
    digest TEXT NOT NULL,
    pinned_at BIGINT NOT NULL
);
CREATE INDEX blob_pins_by_digest ON blob_pins(digest);

-- A digest whose bytes a collection is deleting: a writer of the same digest waits until the
-- tombstone goes (the collection removes it once the bytes are gone, or a collection that
-- takes over finishes the deletion).
CREATE TABLE blob_tombstones (
    digest TEXT PRIMARY KEY,
    job_id BIGINT NOT NULL,
    marked_at BIGINT NOT NULL
);

-- Digests of manifests deleted since the last collection, so that it counts the bytes it then
-- deletes as manifests, as Harbor's reports do.
CREATE TABLE released_manifests (
    digest TEXT PRIMARY KEY
);
CREATE TRIGGER released_manifest AFTER DELETE ON manifests BEGIN
    INSERT INTO released_manifests (digest) VALUES (OLD.digest) ON CONFLICT DO NOTHING;
END;

-- Finding unreferenced content: links older than a time, and blob references by digest.
CREATE INDEX repository_blobs_by_time ON repository_blobs(created_at);
CREATE INDEX blobs_by_time ON blobs(created_at);
CREATE INDEX manifests_by_digest ON manifests(digest);

-- What a running job has recorded of its progress (JSON), so that a takeover resumes.
ALTER TABLE jobs ADD COLUMN progress TEXT NOT NULL DEFAULT '';
-- Harbor's execution trigger: MANUAL or SCHEDULE.
ALTER TABLE jobs ADD COLUMN trigger_kind TEXT NOT NULL DEFAULT 'MANUAL';

-- Standing schedules, one per job type (Harbor's /schedules): the cron, the parameters each
-- firing's job gets, whether it is paused, and the last second fired (claimed with a
-- compare-and-set, so that a time fires once however many replicas look).
CREATE TABLE job_schedules (
    job_type TEXT PRIMARY KEY,
    cron_type TEXT NOT NULL,
    cron TEXT NOT NULL,
    parameters TEXT NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    last_fired BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
