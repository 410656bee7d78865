-- Harbor's CVE allowlists: the system's (project_id NULL, at most one) and each project's.
-- items is a JSON array of vulnerability ids; expires_at is in seconds since the epoch.
CREATE TABLE cve_allowlists (
    id INTEGER PRIMARY KEY,
    project_id BIGINT UNIQUE REFERENCES projects(id) ON DELETE CASCADE,
    expires_at BIGINT,
    items TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX cve_allowlists_system ON cve_allowlists ((project_id IS NULL)) WHERE project_id IS NULL;

-- Each finding of a scan, reduced to its ids and severity (a JSON array), so that a pull
-- under "prevent vulnerable images" applies an allowlist without reading the report.
ALTER TABLE scan_reports ADD COLUMN findings TEXT NOT NULL DEFAULT '';
