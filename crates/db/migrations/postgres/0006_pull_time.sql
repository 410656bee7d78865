-- PostgreSQL: the SQLite script of the same number with identity keys, BYTEA and byte-order ("C")
-- collation on text, so that listings sort as they do on SQLite.
-- Harbor shows when each artifact was last pulled (null: never).
ALTER TABLE manifests ADD COLUMN pull_time BIGINT;
