-- PostgreSQL: the SQLite script of the same number with identity keys, BYTEA and byte-order ("C")
-- collation on text, so that listings sort as they do on SQLite.
-- A repository belongs to the project named by its first path component.
ALTER TABLE repositories ADD COLUMN project_id BIGINT REFERENCES projects(id) ON DELETE CASCADE;
CREATE INDEX repositories_by_project ON repositories(project_id);
