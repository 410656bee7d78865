-- PostgreSQL: the SQLite script of the same number.
-- What the storage driver remembers of an upload between requests (an object store's multipart
-- id, part ids and staged objects), kept beside the offset so the next chunk may reach any replica.
ALTER TABLE uploads ADD COLUMN store_state BYTEA NOT NULL DEFAULT ''::bytea;
