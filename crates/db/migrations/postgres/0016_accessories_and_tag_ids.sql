-- Harbor's artifact model: a manifest may be an accessory of another (its subject), either
-- through the OCI 1.1 `subject` field or through cosign's tag scheme (`sha256-<hex>.sig`,
-- `.att`, `.sbom`); `accessory_type` is Harbor's type of it (`signature.cosign`, ...). An
-- accessory is listed under its subject, not as an artifact, and is deleted with it.
ALTER TABLE manifests ADD COLUMN accessory_of TEXT COLLATE "C";
ALTER TABLE manifests ADD COLUMN accessory_type TEXT COLLATE "C";
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
        AND t.name LIKE 'sha256-%.sig' AND length(t.name) = 75 LIMIT 1),
    accessory_type = 'signature.cosign'
    WHERE accessory_of IS NULL AND EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = manifests.id
        AND t.name LIKE 'sha256-%.sig' AND length(t.name) = 75);
CREATE INDEX manifests_by_accessory ON manifests(repository_id, accessory_of);

-- What Harbor shows of an artifact, read from its content when it is pushed: `extra_attrs`
-- (an image's architecture, os, author, created and config; a chart's Chart.yaml) and, for an
-- index, its manifests' descriptors (platform, annotations, urls) as a JSON array.
ALTER TABLE manifests ADD COLUMN extra_attrs TEXT;
ALTER TABLE manifests ADD COLUMN child_descriptors TEXT;

-- Tags get an id, which Harbor's API shows.
ALTER TABLE tags ADD COLUMN id BIGSERIAL;
CREATE UNIQUE INDEX tags_by_id ON tags(id);
