-- The digest of an artifact's icon: a layer annotated io.goharbor.artifact.v1alpha1.icon, as Harbor
-- reads it; without one, the artifact's type decides (built in).
ALTER TABLE manifests ADD COLUMN icon TEXT;
CREATE INDEX manifests_by_icon ON manifests(icon);
