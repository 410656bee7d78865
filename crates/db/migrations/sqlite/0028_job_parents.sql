-- A job queued by another job (each scan scan-all queues): Harbor's task of an execution, so
-- that the execution's progress is counted and it stops with its tasks.
ALTER TABLE jobs ADD COLUMN parent_id BIGINT;
CREATE INDEX jobs_by_parent ON jobs(parent_id, status) WHERE parent_id IS NOT NULL;
