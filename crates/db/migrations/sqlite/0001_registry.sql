-- The distribution model: repositories, blobs and their links, manifests, tags, upload sessions.
-- Times are milliseconds since the Unix epoch.

CREATE TABLE repositories (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every blob held in storage, once, whatever the number of repositories that use it.
CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Which repositories may serve which blobs (pushed there, mounted, or referenced by a manifest).
CREATE TABLE repository_blobs (
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT NOT NULL REFERENCES blobs(digest),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
CREATE INDEX repository_blobs_by_digest ON repository_blobs(digest);

CREATE TABLE manifests (
    id INTEGER PRIMARY KEY,
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    artifact_type TEXT,
    subject_digest TEXT,
    annotations TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (repository_id, digest)
);
CREATE INDEX manifests_by_subject ON manifests(repository_id, subject_digest);

-- What a manifest points at: its config and layers (kind 'blob') or child manifests ('manifest').
CREATE TABLE manifest_children (
    manifest_id BIGINT NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (manifest_id, kind, digest)
);
CREATE INDEX manifest_children_by_digest ON manifest_children(digest);

CREATE TABLE tags (
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    manifest_id BIGINT NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (repository_id, name)
);
CREATE INDEX tags_by_manifest ON tags(manifest_id);

-- Upload sessions: the offset that is durable in storage and the hash state at that offset, so
-- that any process can continue an upload.
CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    algorithm TEXT NOT NULL,
    byte_offset BIGINT NOT NULL,
    hash_state BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
