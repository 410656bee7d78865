-- Beyond Harbor: a project's quota may also limit each of its repositories to a number of tags
-- and a number of artifacts (as Harbor's listings count them); -1: no limit.
ALTER TABLE project_quotas ADD COLUMN hard_tags_per_repository BIGINT NOT NULL DEFAULT -1;
ALTER TABLE project_quotas ADD COLUMN hard_artifacts_per_repository BIGINT NOT NULL DEFAULT -1;
