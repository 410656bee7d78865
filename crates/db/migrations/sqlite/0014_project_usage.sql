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

CREATE TRIGGER project_usage_blob_added AFTER INSERT ON repository_blobs BEGIN
    INSERT INTO project_content (project_id, digest, size, refs)
    SELECT r.project_id, NEW.digest, COALESCE((SELECT b.size FROM blobs b WHERE b.digest = NEW.digest), 0), 1
    FROM repositories r WHERE r.id = NEW.repository_id AND r.project_id IS NOT NULL
    ON CONFLICT (project_id, digest) DO UPDATE SET refs = refs + 1;
    UPDATE project_stats SET bytes = bytes + COALESCE((SELECT c.size FROM project_content c
        WHERE c.project_id = project_stats.project_id AND c.digest = NEW.digest AND c.refs = 1), 0)
    WHERE project_id = (SELECT r.project_id FROM repositories r WHERE r.id = NEW.repository_id);
END;

CREATE TRIGGER project_usage_manifest_added AFTER INSERT ON manifests BEGIN
    INSERT INTO project_content (project_id, digest, size, refs)
    SELECT r.project_id, NEW.digest, NEW.size, 1
    FROM repositories r WHERE r.id = NEW.repository_id AND r.project_id IS NOT NULL
    ON CONFLICT (project_id, digest) DO UPDATE SET refs = refs + 1;
    UPDATE project_stats SET bytes = bytes + COALESCE((SELECT c.size FROM project_content c
        WHERE c.project_id = project_stats.project_id AND c.digest = NEW.digest AND c.refs = 1), 0)
    WHERE project_id = (SELECT r.project_id FROM repositories r WHERE r.id = NEW.repository_id);
END;

-- A removal while the repository exists (its removal is counted below, before the cascade).
CREATE TRIGGER project_usage_blob_removed AFTER DELETE ON repository_blobs BEGIN
    UPDATE project_content SET refs = refs - 1
    WHERE project_id = (SELECT r.project_id FROM repositories r WHERE r.id = OLD.repository_id) AND digest = OLD.digest;
    UPDATE project_stats SET bytes = bytes - COALESCE((SELECT c.size FROM project_content c
        WHERE c.project_id = project_stats.project_id AND c.digest = OLD.digest AND c.refs = 0), 0)
    WHERE project_id = (SELECT r.project_id FROM repositories r WHERE r.id = OLD.repository_id);
    DELETE FROM project_content WHERE refs <= 0 AND digest = OLD.digest
      AND project_id = (SELECT r.project_id FROM repositories r WHERE r.id = OLD.repository_id);
END;

CREATE TRIGGER project_usage_manifest_removed AFTER DELETE ON manifests BEGIN
    UPDATE project_content SET refs = refs - 1
    WHERE project_id = (SELECT r.project_id FROM repositories r WHERE r.id = OLD.repository_id) AND digest = OLD.digest;
    UPDATE project_stats SET bytes = bytes - COALESCE((SELECT c.size FROM project_content c
        WHERE c.project_id = project_stats.project_id AND c.digest = OLD.digest AND c.refs = 0), 0)
    WHERE project_id = (SELECT r.project_id FROM repositories r WHERE r.id = OLD.repository_id);
    DELETE FROM project_content WHERE refs <= 0 AND digest = OLD.digest
      AND project_id = (SELECT r.project_id FROM repositories r WHERE r.id = OLD.repository_id);
END;

-- Before the delete, as in 0012: once the row is gone, the cascade's triggers cannot find the
-- project, so the repository takes what it holds off the counts first.
CREATE TRIGGER project_usage_repository_removed BEFORE DELETE ON repositories BEGIN
    UPDATE project_content SET refs = refs
        - (SELECT COUNT(*) FROM repository_blobs rb WHERE rb.repository_id = OLD.id AND rb.digest = project_content.digest)
        - (SELECT COUNT(*) FROM manifests m WHERE m.repository_id = OLD.id AND m.digest = project_content.digest)
    WHERE project_id = OLD.project_id AND digest IN
        (SELECT digest FROM repository_blobs WHERE repository_id = OLD.id
         UNION SELECT digest FROM manifests WHERE repository_id = OLD.id);
    UPDATE project_stats SET bytes = bytes - COALESCE((SELECT SUM(c.size) FROM project_content c
        WHERE c.project_id = OLD.project_id AND c.refs <= 0), 0)
    WHERE project_id = OLD.project_id;
    DELETE FROM project_content WHERE project_id = OLD.project_id AND refs <= 0;
END;
