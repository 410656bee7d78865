-- Harbor's artifact model: a manifest may be an accessory of another (its subject), either
-- through the OCI 1.1 `subject` field or through cosign's tag scheme (`sha256-<hex>.sig`,
-- `.att`, `.sbom`); `accessory_type` is Harbor's type of it (`signature.cosign`, ...). An
-- accessory is listed under its subject, not as an artifact, and is deleted with it.
ALTER TABLE manifests ADD COLUMN accessory_of TEXT;
ALTER TABLE manifests ADD COLUMN accessory_type TEXT;
UPDATE manifests SET accessory_of = subject_digest,
    accessory_type = CASE artifact_type
        WHEN 'application/vnd.cncf.notary.signature' THEN 'signature.notation'
        WHEN 'application/vnd.dev.cosign.artifact.sig.v1+json' THEN 'signature.cosign'
        WHEN 'application/vnd.dev.sigstore.bundle.v0.3+json' THEN 'signature.cosign'
        WHEN 'application/vnd.goharbor.harbor.sbom.v1' THEN 'sbom.harbor'
        ELSE 'subject.accessory' END
    WHERE subject_digest IS NOT NULL;
UPDATE manifests SET
    accessory_of = (SELECT 'sha256:' || substr(t.name, 8, 64) FROM tags t WHERE t.manifest_id = manifests.id
        AND t.name GLOB 'sha256-*.sig' AND length(t.name) = 75 LIMIT 1),
    accessory_type = 'signature.cosign'
    WHERE accessory_of IS NULL AND EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = manifests.id
        AND t.name GLOB 'sha256-*.sig' AND length(t.name) = 75);
CREATE INDEX manifests_by_accessory ON manifests(repository_id, accessory_of);

-- What Harbor shows of an artifact, read from its content when it is pushed: `extra_attrs`
-- (an image's architecture, os, author, created and config; a chart's Chart.yaml) and, for an
-- index, its manifests' descriptors (platform, annotations, urls) as a JSON array.
ALTER TABLE manifests ADD COLUMN extra_attrs TEXT;
ALTER TABLE manifests ADD COLUMN child_descriptors TEXT;

-- Tags get an id, which Harbor's API shows.
CREATE TABLE tags_with_ids (
    id INTEGER PRIMARY KEY,
    repository_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    manifest_id BIGINT NOT NULL REFERENCES manifests(id) ON DELETE CASCADE,
    updated_at BIGINT NOT NULL,
    UNIQUE (repository_id, name)
);
INSERT INTO tags_with_ids (repository_id, name, manifest_id, updated_at)
    SELECT repository_id, name, manifest_id, updated_at FROM tags ORDER BY updated_at, name;
DROP TABLE tags;
ALTER TABLE tags_with_ids RENAME TO tags;
CREATE INDEX tags_by_manifest ON tags(manifest_id);
