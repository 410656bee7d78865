-- Counters behind the business metrics of /metrics (Harbor's exporter: repositories, members,
-- pulls and artifacts by type, per project). Kept by triggers in the transaction of every
-- change, so that a scrape reads a row per project rather than counting artifacts, and no
-- write path can forget them (migrate-data's copy fills them the same way).

CREATE TABLE project_stats (
    project_id BIGINT PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    repositories BIGINT NOT NULL DEFAULT 0,
    members BIGINT NOT NULL DEFAULT 0,
    pulls BIGINT NOT NULL DEFAULT 0
);

-- artifact_type: Harbor's type (IMAGE, CHART, UNKNOWN), as the API reports it.
CREATE TABLE project_artifact_stats (
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    artifact_type TEXT NOT NULL,
    artifacts BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, artifact_type)
);

INSERT INTO project_stats (project_id, repositories, members, pulls)
SELECT p.id,
       (SELECT COUNT(*) FROM repositories r WHERE r.project_id = p.id),
       (SELECT COUNT(*) FROM project_members m WHERE m.project_id = p.id),
       (SELECT COALESCE(SUM(r.pull_count), 0) FROM repositories r WHERE r.project_id = p.id)
FROM projects p;

INSERT INTO project_artifact_stats (project_id, artifact_type, artifacts)
SELECT r.project_id,
       CASE WHEN m.artifact_type = 'application/vnd.cncf.helm.config.v1+json' THEN 'CHART'
            WHEN m.artifact_type IN ('application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json') THEN 'IMAGE'
            WHEN m.artifact_type IS NULL AND m.media_type IN ('application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json') THEN 'IMAGE'
            ELSE 'UNKNOWN' END AS kind,
       COUNT(*)
FROM manifests m JOIN repositories r ON r.id = m.repository_id
WHERE r.project_id IS NOT NULL
GROUP BY r.project_id, kind;

CREATE TRIGGER project_stats_project_added AFTER INSERT ON projects BEGIN
    INSERT INTO project_stats (project_id) VALUES (NEW.id);
END;

CREATE TRIGGER project_stats_member_added AFTER INSERT ON project_members BEGIN
    UPDATE project_stats SET members = members + 1 WHERE project_id = NEW.project_id;
END;

CREATE TRIGGER project_stats_member_removed AFTER DELETE ON project_members BEGIN
    UPDATE project_stats SET members = members - 1 WHERE project_id = OLD.project_id;
END;

CREATE TRIGGER project_stats_repository_added AFTER INSERT ON repositories BEGIN
    UPDATE project_stats SET repositories = repositories + 1, pulls = pulls + NEW.pull_count
    WHERE project_id = NEW.project_id;
END;

CREATE TRIGGER project_stats_repository_changed AFTER UPDATE OF project_id, pull_count ON repositories BEGIN
    UPDATE project_stats SET repositories = repositories - 1, pulls = pulls - OLD.pull_count
    WHERE project_id = OLD.project_id;
    UPDATE project_stats SET repositories = repositories + 1, pulls = pulls + NEW.pull_count
    WHERE project_id = NEW.project_id;
END;

-- Before, not after: the cascade that removes the repository's manifests runs once the
-- repository row is gone, when their own trigger can no longer find the project; so the
-- repository takes its artifacts off the counts while they are still there to count.
CREATE TRIGGER project_stats_repository_removed BEFORE DELETE ON repositories BEGIN
    UPDATE project_stats SET repositories = repositories - 1, pulls = pulls - OLD.pull_count
    WHERE project_id = OLD.project_id;
    UPDATE project_artifact_stats SET artifacts = artifacts - (
        SELECT COUNT(*) FROM manifests m WHERE m.repository_id = OLD.id AND project_artifact_stats.artifact_type =
            CASE WHEN m.artifact_type = 'application/vnd.cncf.helm.config.v1+json' THEN 'CHART'
                 WHEN m.artifact_type IN ('application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json') THEN 'IMAGE'
                 WHEN m.artifact_type IS NULL AND m.media_type IN ('application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json') THEN 'IMAGE'
                 ELSE 'UNKNOWN' END)
    WHERE project_id = OLD.project_id;
END;

CREATE TRIGGER project_stats_artifact_added AFTER INSERT ON manifests BEGIN
    INSERT INTO project_artifact_stats (project_id, artifact_type, artifacts)
    SELECT r.project_id,
           CASE WHEN NEW.artifact_type = 'application/vnd.cncf.helm.config.v1+json' THEN 'CHART'
                WHEN NEW.artifact_type IN ('application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json') THEN 'IMAGE'
                WHEN NEW.artifact_type IS NULL AND NEW.media_type IN ('application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json') THEN 'IMAGE'
                ELSE 'UNKNOWN' END,
           1
    FROM repositories r WHERE r.id = NEW.repository_id AND r.project_id IS NOT NULL
    ON CONFLICT (project_id, artifact_type) DO UPDATE SET artifacts = artifacts + 1;
END;

CREATE TRIGGER project_stats_artifact_removed AFTER DELETE ON manifests BEGIN
    UPDATE project_artifact_stats SET artifacts = artifacts - 1
    WHERE project_id = (SELECT r.project_id FROM repositories r WHERE r.id = OLD.repository_id)
      AND artifact_type =
        CASE WHEN OLD.artifact_type = 'application/vnd.cncf.helm.config.v1+json' THEN 'CHART'
             WHEN OLD.artifact_type IN ('application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json') THEN 'IMAGE'
             WHEN OLD.artifact_type IS NULL AND OLD.media_type IN ('application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json') THEN 'IMAGE'
             ELSE 'UNKNOWN' END;
END;
