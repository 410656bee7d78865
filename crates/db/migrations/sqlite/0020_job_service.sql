-- The job service as Harbor's /jobservice shows it, and the audit purge moved onto it.
--
-- A queue per job kind (its rows are made by the replicas that run the kind), which can be
-- paused: a paused queue's pending jobs are not claimed. The row 'SCHEDULER' pauses every
-- standing schedule (Harbor's /schedules/all/paused).
CREATE TABLE job_queues (
    kind TEXT PRIMARY KEY,
    paused INTEGER NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);

-- When a job's current claim began (Harbor's worker start_at).
ALTER TABLE jobs ADD COLUMN started_at BIGINT;

-- Each replica's pool of job runners, with its heartbeat (a pool whose heartbeat stopped is
-- gone: its replica died or stopped).
CREATE TABLE job_pools (
    pool_id TEXT PRIMARY KEY,
    pid BIGINT NOT NULL,
    host TEXT NOT NULL,
    concurrency BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

-- Standing schedules get an id (Harbor's ScheduleTask.id in /schedules).
CREATE TABLE job_schedules_with_ids (
    id INTEGER PRIMARY KEY,
    job_type TEXT NOT NULL UNIQUE,
    cron_type TEXT NOT NULL,
    cron TEXT NOT NULL,
    parameters TEXT NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    last_fired BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO job_schedules_with_ids (job_type, cron_type, cron, parameters, paused, last_fired, created_at, updated_at)
    SELECT job_type, cron_type, cron, parameters, paused, last_fired, created_at, updated_at FROM job_schedules
    ORDER BY created_at;
DROP TABLE job_schedules;
ALTER TABLE job_schedules_with_ids RENAME TO job_schedules;

-- The audit purge's runs become PURGE_AUDIT_LOG jobs (a run cut off while running ended as an
-- error), and its schedule a standing schedule of the job service.
INSERT INTO jobs (kind, parameters, status, attempts, max_attempts, run_after, log, created_at, updated_at,
                  finished_at, progress, trigger_kind)
    SELECT 'PURGE_AUDIT_LOG', parameters, CASE WHEN status = 'Running' THEN 'Error' ELSE status END, 1, 1,
           created_at, log, created_at, updated_at, updated_at, '', job_kind
    FROM purge_audit_runs ORDER BY id;
DROP TABLE purge_audit_runs;
INSERT INTO job_schedules (job_type, cron_type, cron, parameters, paused, last_fired, created_at, updated_at)
    SELECT 'PURGE_AUDIT_LOG', json_extract(value, '$.kind'), json_extract(value, '$.cron'),
           json(json_extract(value, '$.parameters')), 0,
           COALESCE((SELECT CAST(l.value AS INTEGER) FROM settings l WHERE l.name = 'purge_audit_last_fired'),
                    json_extract(value, '$.updated_at') / 1000),
           json_extract(value, '$.created_at'), json_extract(value, '$.updated_at')
    FROM settings WHERE name = 'purge_audit_schedule' AND value <> '';
DELETE FROM settings WHERE name IN ('purge_audit_schedule', 'purge_audit_last_fired');

-- Housekeeping's own lease is gone: it is a job, claimed under the job service's lease.
DROP TABLE leases;
