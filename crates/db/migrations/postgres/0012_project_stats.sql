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

CREATE FUNCTION berth_harbor_type(artifact_type TEXT, media_type TEXT) RETURNS TEXT
LANGUAGE SQL IMMUTABLE AS $$
    SELECT CASE WHEN artifact_type = 'application/vnd.cncf.helm.config.v1+json' THEN 'CHART'
                WHEN artifact_type IN ('application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json') THEN 'IMAGE'
                WHEN artifact_type IS NULL AND media_type IN ('application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json') THEN 'IMAGE'
                ELSE 'UNKNOWN' END
$$;

INSERT INTO project_stats (project_id, repositories, members, pulls)
SELECT p.id,
       (SELECT COUNT(*) FROM repositories r WHERE r.project_id = p.id),
       (SELECT COUNT(*) FROM project_members m WHERE m.project_id = p.id),
       (SELECT COALESCE(SUM(r.pull_count), 0) FROM repositories r WHERE r.project_id = p.id)
FROM projects p;

INSERT INTO project_artifact_stats (project_id, artifact_type, artifacts)
SELECT r.project_id, berth_harbor_type(m.artifact_type, m.media_type), COUNT(*)
FROM manifests m JOIN repositories r ON r.id = m.repository_id
WHERE r.project_id IS NOT NULL
GROUP BY 1, 2;

CREATE FUNCTION berth_project_stats_project() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO project_stats (project_id) VALUES (NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER project_stats_project_added AFTER INSERT ON projects
    FOR EACH ROW EXECUTE FUNCTION berth_project_stats_project();

CREATE FUNCTION berth_project_stats_member() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE project_stats SET members = members + 1 WHERE project_id = NEW.project_id;
    ELSE
        UPDATE project_stats SET members = members - 1 WHERE project_id = OLD.project_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER project_stats_member AFTER INSERT OR DELETE ON project_members
    FOR EACH ROW EXECUTE FUNCTION berth_project_stats_member();

CREATE FUNCTION berth_project_stats_repository() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE project_stats SET repositories = repositories - 1, pulls = pulls - OLD.pull_count
        WHERE project_id = OLD.project_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE project_stats SET repositories = repositories + 1, pulls = pulls + NEW.pull_count
        WHERE project_id = NEW.project_id;
        RETURN NEW;
    END IF;
    -- Before the delete: the cascade that removes the repository's manifests runs once the
    -- repository row is gone, when their own trigger can no longer find the project; so the
    -- repository takes its artifacts off the counts while they are still there to count.
    UPDATE project_artifact_stats s SET artifacts = s.artifacts - c.n
    FROM (SELECT berth_harbor_type(m.artifact_type, m.media_type) AS kind, COUNT(*) AS n
          FROM manifests m WHERE m.repository_id = OLD.id GROUP BY 1) c
    WHERE s.project_id = OLD.project_id AND s.artifact_type = c.kind;
    RETURN OLD;
END $$;
CREATE TRIGGER project_stats_repository_added AFTER INSERT ON repositories
    FOR EACH ROW EXECUTE FUNCTION berth_project_stats_repository();
CREATE TRIGGER project_stats_repository_changed AFTER UPDATE OF project_id, pull_count ON repositories
    FOR EACH ROW EXECUTE FUNCTION berth_project_stats_repository();
CREATE TRIGGER project_stats_repository_removed BEFORE DELETE ON repositories
    FOR EACH ROW EXECUTE FUNCTION berth_project_stats_repository();

CREATE FUNCTION berth_project_stats_artifact() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO project_artifact_stats (project_id, artifact_type, artifacts)
        SELECT r.project_id, berth_harbor_type(NEW.artifact_type, NEW.media_type), 1
        FROM repositories r WHERE r.id = NEW.repository_id AND r.project_id IS NOT NULL
        ON CONFLICT (project_id, artifact_type) DO UPDATE SET artifacts = project_artifact_stats.artifacts + 1;
    ELSE
        UPDATE project_artifact_stats SET artifacts = artifacts - 1
        WHERE project_id = (SELECT r.project_id FROM repositories r WHERE r.id = OLD.repository_id)
          AND artifact_type = berth_harbor_type(OLD.artifact_type, OLD.media_type);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER project_stats_artifact AFTER INSERT OR DELETE ON manifests
    FOR EACH ROW EXECUTE FUNCTION berth_project_stats_artifact();
