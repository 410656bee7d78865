-- The audit log (Harbor's audit_log_ext): who did what to which resource, when, from where, and
-- whether it succeeded. No foreign keys: a record outlives its project, user and artifact.
-- Each record carries the hash of its fields and of the record before it; `audit_chain` holds
-- the newest hash (so that removing the newest records shows) and, after a purge, the hash the
-- oldest remaining record must follow.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    op_time BIGINT NOT NULL,
    username TEXT NOT NULL,
    operation TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource TEXT NOT NULL,
    project_id BIGINT,
    op_desc TEXT NOT NULL,
    op_result BIGINT NOT NULL,
    source TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_by_time ON audit_log(op_time);
CREATE INDEX audit_log_by_project ON audit_log(project_id, id);
CREATE TABLE audit_chain (
    id BIGINT PRIMARY KEY,
    last_hash TEXT NOT NULL,
    anchor_hash TEXT NOT NULL
);
INSERT INTO audit_chain (id, last_hash, anchor_hash) VALUES (1, '', '');
-- The links of purged records that are not a prefix of the chain (a purge by event type).
CREATE TABLE audit_purged (
    id BIGINT PRIMARY KEY,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
