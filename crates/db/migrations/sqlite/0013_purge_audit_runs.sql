-- Runs of the audit-log purge (Harbor's /system/purgeaudit executions): by hand or on the
-- schedule kept in settings ('purge_audit_schedule'), with what each did.
CREATE TABLE purge_audit_runs (
    id INTEGER PRIMARY KEY,
    job_kind TEXT NOT NULL,
    parameters TEXT NOT NULL,
    status TEXT NOT NULL,
    log TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX purge_audit_runs_by_time ON purge_audit_runs(created_at);
