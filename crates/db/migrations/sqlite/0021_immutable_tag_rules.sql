-- Harbor's tag immutability rules (harbor.md 2.7): per project, a repository selector and a tag
-- selector (doublestar patterns, each `matches` or `excludes`), a priority, and a switch.
CREATE TABLE immutable_tag_rules (
    id INTEGER PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    priority BIGINT NOT NULL DEFAULT 0,
    disabled BIGINT NOT NULL DEFAULT 0,
    repository_decoration TEXT NOT NULL,
    repository_pattern TEXT NOT NULL,
    tag_decoration TEXT NOT NULL,
    tag_pattern TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (project_id, repository_decoration, repository_pattern, tag_decoration, tag_pattern)
);
