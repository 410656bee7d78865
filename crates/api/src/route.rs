//! Parsing `/v2/...` paths into the distribution API's endpoints.
//!
//! Repository names contain slashes, so the endpoint is recognised from the end of the path
//! (as Distribution does) rather than with a router pattern.

use berth_oci::{Digest, ErrorCode, Reference, RepositoryName};

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    Base,
    Catalog,
    Tags(RepositoryName),
    Manifest(RepositoryName, Reference),
    Blob(RepositoryName, Digest),
    UploadStart(RepositoryName),
    Upload(RepositoryName, String),
    Referrers(RepositoryName, Digest),
}

impl Endpoint {
    /// The repository the endpoint acts on, if any.
    pub fn repository(&self) -> Option<&RepositoryName> {
        match self {
            Endpoint::Base | Endpoint::Catalog => None,
            Endpoint::Tags(n)
            | Endpoint::Manifest(n, _)
            | Endpoint::Blob(n, _)
            | Endpoint::UploadStart(n)
            | Endpoint::Upload(n, _)
            | Endpoint::Referrers(n, _) => Some(n),
        }
    }
}

fn name(parts: &[&str]) -> Result<RepositoryName, ApiError> {
    let joined = parts.join("/");
    RepositoryName::parse(&joined).map_err(|e| ApiError::new(ErrorCode::NameInvalid, e.to_string()))
}

fn digest(s: &str) -> Result<Digest, ApiError> {
    Digest::parse(s).map_err(|e| ApiError::new(ErrorCode::DigestInvalid, e.to_string()))
}

/// Parses the part of the path after `/v2/`.
pub fn parse(rest: &str) -> Result<Endpoint, ApiError> {
    if rest.is_empty() {
        return Ok(Endpoint::Base);
    }
    if rest == "_catalog" {
        return Ok(Endpoint::Catalog);
    }
    let seg: Vec<&str> = rest.split('/').collect();
    let n = seg.len();
    let not_found = || ApiError::not_found(format!("no endpoint at /v2/{rest}"));
    if n < 2 {
        return Err(not_found());
    }
    // `.../blobs/uploads/<id>` and `.../blobs/uploads/` (a trailing slash leaves an empty id).
    if n >= 4 && seg[n - 3] == "blobs" && seg[n - 2] == "uploads" {
        let repo = name(&seg[..n - 3])?;
        return Ok(if seg[n - 1].is_empty() {
            Endpoint::UploadStart(repo)
        } else {
            Endpoint::Upload(repo, seg[n - 1].to_string())
        });
    }
    if n >= 3 && seg[n - 2] == "blobs" && seg[n - 1] == "uploads" {
        return Ok(Endpoint::UploadStart(name(&seg[..n - 2])?));
    }
    if n >= 3 && seg[n - 2] == "tags" && seg[n - 1] == "list" {
        return Ok(Endpoint::Tags(name(&seg[..n - 2])?));
    }
    if n >= 3 {
        let repo = || name(&seg[..n - 2]);
        let last = seg[n - 1];
        match seg[n - 2] {
            "blobs" => return Ok(Endpoint::Blob(repo()?, digest(last)?)),
            "referrers" => return Ok(Endpoint::Referrers(repo()?, digest(last)?)),
            "manifests" => {
                let reference = Reference::parse(last).map_err(|e| match e {
                    berth_oci::NameError::InvalidDigest(_) => ApiError::new(ErrorCode::DigestInvalid, e.to_string()),
                    _ => ApiError::new(ErrorCode::ManifestInvalid, e.to_string()),
                })?;
                return Ok(Endpoint::Manifest(repo()?, reference));
            }
            _ => {}
        }
    }
    Err(not_found())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn repo(s: &str) -> RepositoryName {
        RepositoryName::parse(s).unwrap()
    }

    #[test]
    fn endpoints() {
        assert_eq!(parse("").unwrap(), Endpoint::Base);
        assert_eq!(parse("_catalog").unwrap(), Endpoint::Catalog);
        assert_eq!(parse("a/b/tags/list").unwrap(), Endpoint::Tags(repo("a/b")));
        assert!(
            matches!(parse("a/b/c/manifests/latest").unwrap(), Endpoint::Manifest(n, Reference::Tag(_)) if n == repo("a/b/c"))
        );
        assert!(matches!(parse(&format!("x/manifests/{D}")).unwrap(), Endpoint::Manifest(_, Reference::Digest(_))));
        assert_eq!(parse(&format!("x/blobs/{D}")).unwrap(), Endpoint::Blob(repo("x"), Digest::parse(D).unwrap()));
        assert_eq!(parse("x/y/blobs/uploads/").unwrap(), Endpoint::UploadStart(repo("x/y")));
        assert_eq!(parse("x/y/blobs/uploads").unwrap(), Endpoint::UploadStart(repo("x/y")));
        assert_eq!(parse("x/blobs/uploads/abc-1").unwrap(), Endpoint::Upload(repo("x"), "abc-1".into()));
        assert_eq!(
            parse(&format!("x/referrers/{D}")).unwrap(),
            Endpoint::Referrers(repo("x"), Digest::parse(D).unwrap())
        );
        // A repository may itself be called "blobs" or "manifests".
        assert!(matches!(parse("manifests/manifests/v1").unwrap(), Endpoint::Manifest(n, _) if n == repo("manifests")));
    }

    #[test]
    fn errors() {
        let code = |p: &str| parse(p).unwrap_err().code;
        assert_eq!(code("Upper/manifests/latest"), Some(ErrorCode::NameInvalid));
        assert_eq!(code("x/blobs/sha256:123"), Some(ErrorCode::DigestInvalid));
        assert_eq!(code("x/manifests/sha256:123"), Some(ErrorCode::DigestInvalid));
        assert_eq!(code("x/manifests/-bad"), Some(ErrorCode::ManifestInvalid));
        assert_eq!(code("x/unknown/thing"), None);
        assert_eq!(code("x"), None);
    }
}
