-- PostgreSQL: the SQLite script of the same number with identity keys, BYTEA and byte-order ("C")
-- collation on text, so that listings sort as they do on SQLite.
-- Harbor shows a description and a pull count for each repository.
ALTER TABLE repositories ADD COLUMN description TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE repositories ADD COLUMN pull_count BIGINT NOT NULL DEFAULT 0;
