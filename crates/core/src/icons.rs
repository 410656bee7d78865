//! Artifact icons, as Harbor shows them: an artifact's own (a layer annotated
//! `io.goharbor.artifact.v1alpha1.icon`), else one built in for its type. Harbor resizes an
//! artifact's own icon to 50x50 before serving it; Berth serves it as pushed (at most 1 MiB, of
//! the image types Harbor accepts), since re-encoding images would need an image codec for a
//! thumbnail the portal scales anyway.

use std::sync::LazyLock;

use berth_auth::rbac::Subject;
use berth_oci::Digest;
use berth_oci::manifest::Descriptor;
use bytes::Bytes;

use crate::projects::{ProjectError, Projects};

/// The annotation that makes a layer the artifact's icon.
pub const ICON_ANNOTATION: &str = "io.goharbor.artifact.v1alpha1.icon";
/// The media types an icon layer may have (Harbor's list).
const ICON_TYPES: &[&str] = &["image/png", "image/jpeg", "image/jpg", "image/gif"];
/// The largest icon layer that is taken as one.
const MAX_ICON: i64 = 1 << 20;

/// An icon's bytes and media type.
pub struct Icon {
    pub content_type: String,
    pub content: Bytes,
}

/// The icons built in, by Harbor's artifact type, with their digests.
static BUILTIN: LazyLock<Vec<(&'static str, String, &'static [u8])>> = LazyLock::new(|| {
    let icons: [(&'static str, &'static [u8]); 5] = [
        ("IMAGE", include_bytes!("icons/image.svg")),
        ("CHART", include_bytes!("icons/chart.svg")),
        ("CNAB", include_bytes!("icons/cnab.svg")),
        ("WASM", include_bytes!("icons/wasm.svg")),
        ("", include_bytes!("icons/default.svg")),
    ];
    icons.into_iter().map(|(kind, bytes)| (kind, Digest::sha256_of(bytes).as_str().to_string(), bytes)).collect()
});

/// The digest of the icon built in for artifacts of Harbor's type `kind` (`IMAGE`, `CHART`,
/// ...; any other gets the default one).
pub fn builtin_digest(kind: &str) -> &'static str {
    let icons = &*BUILTIN;
    let found = icons.iter().find(|(k, _, _)| *k == kind).or_else(|| icons.iter().find(|(k, _, _)| k.is_empty()));
    found.map_or("", |(_, digest, _)| digest.as_str())
}

/// The layer of an image manifest that is its icon, if one is.
pub fn icon_layer(layers: &[Descriptor]) -> Option<&Descriptor> {
    layers.iter().find(|l| {
        l.annotations.as_ref().is_some_and(|a| a.contains_key(ICON_ANNOTATION))
            && ICON_TYPES.contains(&l.media_type.as_str())
            && (0..=MAX_ICON).contains(&l.size)
    })
}

/// The image type of an icon's bytes, from their signature (the layer's media type is not
/// kept, and a client may have named the wrong one).
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else {
        None
    }
}

impl Projects {
    /// `GET /icons/{digest}`: a built-in icon (for anyone), or the icon layer of an artifact in
    /// a repository the caller may read. Others' icons are not found, as nothing else of a
    /// project the caller cannot see is.
    pub async fn icon(&self, subject: &Subject, digest: &str) -> Result<Icon, ProjectError> {
        let parsed = Digest::parse(digest).map_err(|e| ProjectError::Invalid(format!("digest: {e}")))?;
        if let Some((_, _, bytes)) = BUILTIN.iter().find(|(_, d, _)| d == parsed.as_str()) {
            return Ok(Icon { content_type: "image/svg+xml".into(), content: Bytes::from_static(bytes) });
        }
        let not_found = || ProjectError::NotFound(format!("icon {digest}"));
        let mut readable = false;
        for project in self.db.icon_projects(parsed.as_str()).await? {
            if let Some(access) = self.access.project_by_id(subject, project).await?
                && access.allows(subject, berth_auth::rbac::Resource::Repository, berth_auth::rbac::Action::Pull)
            {
                readable = true;
                break;
            }
        }
        if !readable {
            return Err(not_found());
        }
        // Content is addressed by digest: the same bytes whichever project holds them.
        let content = self.content.read_blob(&parsed).await?;
        let content_type = sniff(&content).ok_or_else(not_found)?;
        Ok(Icon { content_type: content_type.into(), content })
    }
}
