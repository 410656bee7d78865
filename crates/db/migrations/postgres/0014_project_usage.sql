-- A project's storage use, as Harbor's quota usage counts it: every distinct blob and manifest
-- its repositories hold, once however many repositories hold it. project_content counts the
-- references to each digest in the project; project_stats.bytes sums the sizes of those held.
-- Kept by triggers, as migration 0012's counters are.

CREATE TABLE project_content (
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    size BIGINT NOT NULL,
    refs BIGINT NOT NULL,
    PRIMARY KEY (project_id, digest)
);

ALTER TABLE project_stats ADD COLUMN bytes BIGINT NOT NULL DEFAULT 0;

INSERT INTO project_content (project_id, digest, size, refs)
SELECT project_id, digest, MAX(size), COUNT(*) FROM (
    SELECT r.project_id AS project_id, rb.digest AS digest, b.size AS size
    FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id JOIN blobs b ON b.digest = rb.digest
    WHERE r.project_id IS NOT NULL
    UNION ALL
    SELECT r.project_id, m.digest, m.size
    FROM manifests m JOIN repositories r ON r.id = m.repository_id
    WHERE r.project_id IS NOT NULL
) held
GROUP BY project_id, digest;

UPDATE project_stats SET bytes =
    (SELECT COALESCE(SUM(c.size), 0) FROM project_content c WHERE c.project_id = project_stats.project_id);

-- One reference more (delta 1) or fewer (-1) to `digest` in the project of `repository`.
CREATE FUNCTION berth_project_usage(repository BIGINT, held_digest TEXT, held_size BIGINT, delta BIGINT)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    project BIGINT;
    now_refs BIGINT;
    content_size BIGINT;
BEGIN
    SELECT project_id INTO project FROM repositories WHERE id = repository;
    IF project IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO project_content (project_id, digest, size, refs) VALUES (project, held_digest, held_size, delta)
    ON CONFLICT (project_id, digest) DO UPDATE SET refs = project_content.refs + delta
    RETURNING refs, size INTO now_refs, content_size;
    IF delta > 0 AND now_refs = delta THEN
        UPDATE project_stats SET bytes = bytes + content_size WHERE project_id = project;
    ELSIF delta < 0 AND now_refs <= 0 THEN
        UPDATE project_stats SET bytes = bytes - content_size WHERE project_id = project;
        DELETE FROM project_content WHERE project_id = project AND digest = held_digest;
    END IF;
END $$;

CREATE FUNCTION berth_project_usage_blob() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM berth_project_usage(NEW.repository_id, NEW.digest,
            COALESCE((SELECT size FROM blobs WHERE digest = NEW.digest), 0), 1);
    ELSE
        PERFORM berth_project_usage(OLD.repository_id, OLD.digest, 0, -1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER project_usage_blob AFTER INSERT OR DELETE ON repository_blobs
    FOR EACH ROW EXECUTE FUNCTION berth_project_usage_blob();

CREATE FUNCTION berth_project_usage_manifest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM berth_project_usage(NEW.repository_id, NEW.digest, NEW.size, 1);
    ELSE
        PERFORM berth_project_usage(OLD.repository_id, OLD.digest, 0, -1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER project_usage_manifest AFTER INSERT OR DELETE ON manifests
    FOR EACH ROW EXECUTE FUNCTION berth_project_usage_manifest();

-- Before the delete, as in 0012: once the row is gone, the cascade's triggers cannot find the
-- project, so the repository takes what it holds off the counts first.
CREATE FUNCTION berth_project_usage_repository() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE project_content c SET refs = c.refs - held.n
    FROM (SELECT digest, COUNT(*) AS n FROM (
              SELECT digest FROM repository_blobs WHERE repository_id = OLD.id
              UNION ALL SELECT digest FROM manifests WHERE repository_id = OLD.id) d
          GROUP BY digest) held
    WHERE c.project_id = OLD.project_id AND c.digest = held.digest;
    UPDATE project_stats SET bytes = bytes - COALESCE((SELECT SUM(size) FROM project_content
        WHERE project_id = OLD.project_id AND refs <= 0), 0)
    WHERE project_id = OLD.project_id;
    DELETE FROM project_content WHERE project_id = OLD.project_id AND refs <= 0;
    RETURN OLD;
END $$;
CREATE TRIGGER project_usage_repository_removed BEFORE DELETE ON repositories
    FOR EACH ROW EXECUTE FUNCTION berth_project_usage_repository();
