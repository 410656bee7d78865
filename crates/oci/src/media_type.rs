//! Media types of manifests and layers that the registry must recognise.

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The media types of an image's config (OCI's and Docker's).
pub const IMAGE_CONFIGS: [&str; 2] =
    ["application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"];

/// Layers a registry is not required to hold (Windows base layers and OCI's
/// non-distributable layers): a manifest may reference them without the blob being pushed.
pub fn is_foreign_layer(media_type: &str) -> bool {
    media_type == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        || media_type.starts_with("application/vnd.oci.image.layer.nondistributable.")
}

/// The manifest media types that can be stored and served.
pub const MANIFEST_TYPES: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST];

pub fn is_schema1(media_type: &str) -> bool {
    media_type == DOCKER_SCHEMA1 || media_type == DOCKER_SCHEMA1_SIGNED
}

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}
