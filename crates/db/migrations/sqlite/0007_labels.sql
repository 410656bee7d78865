-- Harbor's labels: global ones (scope 'g', managed by administrators) and project ones
-- (scope 'p'), attached to artifacts.
CREATE TABLE labels (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    color TEXT NOT NULL DEFAULT '',
    scope TEXT NOT NULL CHECK (scope IN ('g', 'p')),
    project_id BIGINT REFERENCES projects(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK ((scope = 'g') = (project_id IS NULL))
);
-- A name once per scope and project (NULLs are distinct in a plain UNIQUE, hence COALESCE).
CREATE UNIQUE INDEX labels_unique_name ON labels(scope, COALESCE(project_id, 0), name);

CREATE TABLE artifact_labels (
    manifest_id BIGINT NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    label_id BIGINT NOT NULL REFERENCES labels(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (manifest_id, label_id)
);
CREATE INDEX artifact_labels_by_label ON artifact_labels(label_id);
