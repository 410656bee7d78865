//! Parsing and validation of the manifests a registry stores: OCI image manifest and index,
//! Docker schema 2 manifest and manifest list.
//!
//! Only the fields the registry acts on are modelled; the stored bytes are always the client's
//! own, so nothing is lost by not modelling the rest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::media_type;

/// The spec lets a registry refuse manifests larger than 4 MiB; all common registries do.
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is larger than {MAX_MANIFEST_SIZE} bytes")]
    TooLarge,
    #[error("manifest is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("Docker schema 1 manifests are not supported; push an OCI or Docker schema 2 manifest")]
    Schema1,
    #[error("unknown manifest media type {0:?}")]
    UnknownMediaType(String),
    #[error("manifest has no media type: set mediaType in the body or the Content-Type header")]
    NoMediaType,
    #[error("the body's mediaType {body:?} differs from the Content-Type {header:?}")]
    MediaTypeMismatch { body: String, header: String },
    #[error("unsupported schemaVersion {0}; expected 2")]
    SchemaVersion(i64),
    #[error("invalid descriptor: {0}")]
    InvalidDescriptor(String),
}

/// A content descriptor, as it appears in manifests and in the referrers index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

/// Whether a manifest's reference is to a blob (config, layer) or to another manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    Blob,
    Manifest,
}

impl ChildKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChildKind::Blob => "blob",
            ChildKind::Manifest => "manifest",
        }
    }
}

/// Something a manifest points at, which must exist in the repository before the manifest does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub digest: Digest,
    pub kind: ChildKind,
    pub size: u64,
    /// A foreign or non-distributable layer: the registry need not hold it.
    pub foreign: bool,
}

/// A validated manifest, with what the registry needs to store and index it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedManifest {
    pub media_type: String,
    /// `artifactType` of the manifest, else (for image manifests) the config's media type, as
    /// the referrers API prescribes.
    pub artifact_type: Option<String>,
    pub subject: Option<Digest>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub children: Vec<Child>,
    /// The config's descriptor, for an image manifest.
    pub config: Option<Descriptor>,
    /// The descriptors of an index's manifests (with their platforms).
    pub manifests: Vec<Descriptor>,
    /// The layers' descriptors, for an image manifest.
    pub layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<BTreeMap<String, String>>,
}

/// Strips parameters (`; charset=utf-8`) from a Content-Type.
fn bare_media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// Parses and validates a manifest. The media type is the body's `mediaType` when present, else
/// the request's `Content-Type` (umoci and older tools leave `mediaType` out).
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<ParsedManifest, ManifestError> {
    if bytes.len() > MAX_MANIFEST_SIZE {
        return Err(ManifestError::TooLarge);
    }
    let header = content_type.map(bare_media_type).filter(|s| !s.is_empty());
    if header.is_some_and(media_type::is_schema1) {
        return Err(ManifestError::Schema1);
    }
    let raw: RawManifest = serde_json::from_slice(bytes).map_err(|e| ManifestError::InvalidJson(e.to_string()))?;

    let media_type = match (raw.media_type.as_deref(), header) {
        (Some(body), _) if media_type::is_schema1(body) => return Err(ManifestError::Schema1),
        (Some(body), Some(h)) if body != h && media_type::MANIFEST_TYPES.contains(&h) => {
            return Err(ManifestError::MediaTypeMismatch { body: body.to_string(), header: h.to_string() });
        }
        (Some(body), _) => body.to_string(),
        (None, Some(h)) => h.to_string(),
        (None, None) => return Err(ManifestError::NoMediaType),
    };
    if raw.schema_version == Some(1) {
        return Err(ManifestError::Schema1);
    }
    if !media_type::MANIFEST_TYPES.contains(&media_type.as_str()) {
        return Err(ManifestError::UnknownMediaType(media_type));
    }
    match raw.schema_version {
        Some(2) => {}
        Some(v) => return Err(ManifestError::SchemaVersion(v)),
        None => return Err(ManifestError::InvalidJson("missing schemaVersion".into())),
    }

    let mut children = Vec::new();
    let mut config_descriptor = None;
    let mut index_descriptors = Vec::new();
    let mut layer_descriptors = Vec::new();
    let artifact_type = if media_type::is_index(&media_type) {
        if raw.config.is_some() || raw.layers.is_some() {
            return Err(ManifestError::InvalidDescriptor("an index must not have config or layers".into()));
        }
        let manifests = raw
            .manifests
            .ok_or_else(|| ManifestError::InvalidDescriptor("an index must have a manifests list".into()))?;
        for d in &manifests {
            children.push(child(d, ChildKind::Manifest)?);
        }
        index_descriptors = manifests;
        raw.artifact_type.clone()
    } else {
        if raw.manifests.is_some() {
            return Err(ManifestError::InvalidDescriptor("an image manifest must not have a manifests list".into()));
        }
        let config = raw
            .config
            .ok_or_else(|| ManifestError::InvalidDescriptor("an image manifest must have a config".into()))?;
        children.push(child(&config, ChildKind::Blob)?);
        // Docker schema 2 requires layers; OCI 1.1 allows an artifact with none listed but the
        // field itself must be there.
        let layers = raw
            .layers
            .ok_or_else(|| ManifestError::InvalidDescriptor("an image manifest must have a layers list".into()))?;
        for d in &layers {
            children.push(child(d, ChildKind::Blob)?);
        }
        let artifact_type = raw.artifact_type.clone().or(Some(config.media_type.clone()));
        config_descriptor = Some(config);
        layer_descriptors = layers;
        artifact_type
    };
    let subject = match raw.subject {
        Some(s) => {
            validate_descriptor(&s)?;
            Some(Digest::parse(&s.digest).map_err(|e| ManifestError::InvalidDescriptor(e.to_string()))?)
        }
        None => None,
    };
    Ok(ParsedManifest {
        media_type,
        artifact_type,
        subject,
        annotations: raw.annotations,
        children,
        config: config_descriptor,
        manifests: index_descriptors,
        layers: layer_descriptors,
    })
}

fn validate_descriptor(d: &Descriptor) -> Result<(), ManifestError> {
    if d.media_type.is_empty() {
        return Err(ManifestError::InvalidDescriptor(format!("descriptor {} has no mediaType", d.digest)));
    }
    if d.size < 0 {
        return Err(ManifestError::InvalidDescriptor(format!("descriptor {} has a negative size", d.digest)));
    }
    Ok(())
}

fn child(d: &Descriptor, kind: ChildKind) -> Result<Child, ManifestError> {
    validate_descriptor(d)?;
    let digest =
        Digest::parse(&d.digest).map_err(|e| ManifestError::InvalidDescriptor(format!("{}: {e}", d.digest)))?;
    let foreign = kind == ChildKind::Blob
        && (media_type::is_foreign_layer(&d.media_type) || d.urls.as_ref().is_some_and(|u| !u.is_empty()));
    Ok(Child { digest, kind, size: d.size as u64, foreign })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_type::*;

    fn d(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    fn image(mt: Option<&str>) -> Vec<u8> {
        let mut v = serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d(1), "size": 10},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d(2), "size": 20}],
        });
        if let Some(mt) = mt {
            v["mediaType"] = mt.into();
        }
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn image_manifest_lists_config_and_layers() {
        let m = parse(&image(Some(OCI_MANIFEST)), None).unwrap();
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert_eq!(m.children.len(), 2);
        assert!(m.children.iter().all(|c| c.kind == ChildKind::Blob && !c.foreign));
        assert_eq!(m.artifact_type.as_deref(), Some("application/vnd.oci.image.config.v1+json"));
    }

    #[test]
    fn media_type_falls_back_to_content_type() {
        let m = parse(&image(None), Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8")).unwrap();
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert_eq!(parse(&image(None), None), Err(ManifestError::NoMediaType));
    }

    #[test]
    fn conflicting_media_types_are_refused() {
        assert!(matches!(
            parse(&image(Some(OCI_MANIFEST)), Some(DOCKER_MANIFEST)),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
        // A generic Content-Type does not conflict.
        assert!(parse(&image(Some(OCI_MANIFEST)), Some("application/json")).is_ok());
    }

    #[test]
    fn schema1_is_refused_clearly() {
        let s1 = br#"{"schemaVersion":1,"name":"a","tag":"b","fsLayers":[]}"#;
        assert_eq!(parse(s1, Some(DOCKER_SCHEMA1_SIGNED)), Err(ManifestError::Schema1));
        assert_eq!(parse(s1, Some(DOCKER_MANIFEST)), Err(ManifestError::Schema1));
    }

    #[test]
    fn index_children_are_manifests() {
        let body = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "artifactType": "application/x",
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": d(3), "size": 5, "platform": {"os": "linux", "architecture": "amd64"}}],
        }))
        .unwrap();
        let m = parse(&body, None).unwrap();
        assert_eq!(m.children[0].kind, ChildKind::Manifest);
        assert_eq!(m.artifact_type.as_deref(), Some("application/x"));
    }

    #[test]
    fn subject_and_foreign_layers() {
        let body = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": d(1), "size": 1},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "digest": d(2), "size": 1, "urls": ["https://x"]}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": d(9), "size": 3},
        }))
        .unwrap();
        let m = parse(&body, None).unwrap();
        assert!(m.children[1].foreign);
        assert_eq!(m.subject.unwrap().as_str(), d(9));
    }

    #[test]
    fn invalid_manifests() {
        let cases: Vec<Vec<u8>> = vec![
            b"not json".to_vec(),
            br#"{"schemaVersion":2,"mediaType":"application/x-unknown"}"#.to_vec(),
            format!(r#"{{"schemaVersion":3,"mediaType":"{OCI_MANIFEST}","config":{{}},"layers":[]}}"#).into_bytes(),
            format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","layers":[]}}"#).into_bytes(),
            format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}"}}"#).into_bytes(),
            format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"a","digest":"sha256:12","size":1}},"layers":[]}}"#).into_bytes(),
            format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"a","digest":"{}","size":-1}},"layers":[]}}"#, d(1)).into_bytes(),
            vec![b' '; MAX_MANIFEST_SIZE + 1],
        ];
        for c in cases {
            assert!(parse(&c, None).is_err(), "{:?}", String::from_utf8_lossy(&c[..c.len().min(80)]));
        }
    }
}
