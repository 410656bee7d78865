-- Harbor's tag retention (harbor.md 2.8): one policy per project, its rules kept as Harbor's
-- JSON (checked by berth-retention before they are stored); the job of the execution that
-- holds the policy now (one at a time per project); and each execution's tasks, one per
-- repository, with the table of what was retained and removed.
CREATE TABLE retention_policies (
    id INTEGER PRIMARY KEY,
    project_id BIGINT NOT NULL UNIQUE REFERENCES projects(id) ON DELETE CASCADE,
    algorithm TEXT NOT NULL,
    rules TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    cron TEXT NOT NULL DEFAULT '',
    per_tag BIGINT NOT NULL DEFAULT 0,
    running_job BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE retention_tasks (
    id INTEGER PRIMARY KEY,
    execution_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    repository TEXT NOT NULL,
    status TEXT NOT NULL,
    total BIGINT NOT NULL DEFAULT 0,
    retained BIGINT NOT NULL DEFAULT 0,
    log TEXT NOT NULL DEFAULT '',
    start_time BIGINT NOT NULL,
    end_time BIGINT,
    UNIQUE (execution_id, repository)
);

-- Schedules of one job type may now be many, one per vendor (a retention policy's id); the
-- job service's own standing schedules are vendor 0.
CREATE TABLE job_schedules_by_vendor (
    id INTEGER PRIMARY KEY,
    job_type TEXT NOT NULL,
    vendor_id BIGINT NOT NULL DEFAULT 0,
    cron_type TEXT NOT NULL,
    cron TEXT NOT NULL,
    parameters TEXT NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    last_fired BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (job_type, vendor_id)
);
INSERT INTO job_schedules_by_vendor (id, job_type, vendor_id, cron_type, cron, parameters, paused, last_fired,
                                     created_at, updated_at)
    SELECT id, job_type, 0, cron_type, cron, parameters, paused, last_fired, created_at, updated_at
    FROM job_schedules;
DROP TABLE job_schedules;
ALTER TABLE job_schedules_by_vendor RENAME TO job_schedules;
