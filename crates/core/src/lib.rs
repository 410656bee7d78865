//! The registry's domain: what it means to push, pull, tag, mount and delete content.
//!
//! `core` combines the metadata in `db` with the bytes in `store` and enforces the rules of
//! the distribution spec. It speaks in domain errors carrying OCI codes; it knows nothing of
//! HTTP, and nothing of who the caller is (authorization happens before a call reaches here).

mod error;
pub mod identity;
pub mod projects;
mod registry;
pub mod robots;
pub mod throttle;
pub mod users;

pub use error::RegistryError;
pub use registry::{BlobRead, ManifestRead, Page, Registry, UploadStatus};
