-- Scans, as Harbor's scan reports: one per (artifact digest, scanner registration, report
-- type), its job, and the report's summary (counts per severity, fixable) beside the report,
-- so that listings with scan overviews read one row per artifact, never the findings.
CREATE TABLE scan_reports (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    digest TEXT NOT NULL,
    registration TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    status TEXT NOT NULL,
    job_id BIGINT,
    severity TEXT NOT NULL DEFAULT '',
    summary TEXT NOT NULL DEFAULT '',
    report TEXT NOT NULL DEFAULT '',
    start_time BIGINT NOT NULL,
    end_time BIGINT,
    UNIQUE (digest, registration, mime_type)
);

-- What one layer holds that a scan reads (berth-scan's LayerFiles), by the layer's digest: a
-- layer that images share is read once.
CREATE TABLE scan_layers (
    digest TEXT PRIMARY KEY,
    files TEXT NOT NULL,
    analysed_at BIGINT NOT NULL
);
