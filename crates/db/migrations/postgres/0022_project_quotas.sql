-- Harbor's quotas (harbor.md 2.9): one per project, of one resource, storage in bytes; -1 is
-- unlimited. What a project uses is project_stats.bytes (migration 0014), kept by triggers; a
-- write that would take it past the limit is refused in its own transaction (db::quotas).
CREATE TABLE project_quotas (
    id BIGSERIAL PRIMARY KEY,
    project_id BIGINT NOT NULL UNIQUE REFERENCES projects(id) ON DELETE CASCADE,
    hard_storage BIGINT NOT NULL DEFAULT -1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO project_quotas (project_id, hard_storage, created_at, updated_at)
    SELECT id, -1, created_at, updated_at FROM projects;
