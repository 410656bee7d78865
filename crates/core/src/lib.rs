//! The registry's domain: what it means to push, pull, tag, mount and delete content.
//!
//! `core` combines the metadata in `db` with the bytes in `store` and enforces the rules of
//! the distribution spec. It speaks in domain errors carrying OCI codes; it knows nothing of
//! HTTP, and nothing of who the caller is (authorization happens before a call reaches here).

pub mod access;
pub mod additions;
pub mod allowlists;
pub mod artifacts;
pub mod audit;
pub mod cache;
pub mod content;
mod error;
pub mod health;
pub mod icons;
pub mod identity;
pub mod immutable;
pub mod labels;
pub mod maintenance;
mod metered_store;
pub mod projects;
pub mod pulls;
pub mod purge;
pub mod query;
pub mod quotas;
mod registry;
pub mod robots;
pub mod scanners;
pub mod scans;
pub mod security_hub;
pub mod settings;
pub mod shared;
pub mod syslog;
mod telemetry;
pub mod throttle;
pub mod time;
mod turns;
pub mod users;
mod vulnerable;

pub use error::RegistryError;
pub use registry::{BlobRead, ManifestRead, Page, Puller, Registry, UploadStatus};

/// How a refused request was refused, whatever the service: what an API layer needs to
/// choose a status, without matching every service's error type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Invalid,
    Conflict,
    NotFound,
    Unauthorized,
    Forbidden,
    Precondition,
    /// Over a limit that passes by itself: retry after a moment (429 with `Retry-After`).
    Busy,
    Internal,
}

/// An error that can say how it refuses.
pub trait Refuses: std::fmt::Display {
    fn refusal(&self) -> Refusal;
}

impl Refuses for projects::ProjectError {
    fn refusal(&self) -> Refusal {
        use projects::ProjectError as E;
        match self {
            E::Invalid(_) => Refusal::Invalid,
            E::Conflict(_) => Refusal::Conflict,
            E::NotFound(_) => Refusal::NotFound,
            E::Unauthorized => Refusal::Unauthorized,
            E::Forbidden(_) => Refusal::Forbidden,
            E::NotEmpty(_) => Refusal::Precondition,
            E::Policy(refusal, _) => *refusal,
            E::Internal(_) => Refusal::Internal,
        }
    }
}

impl Refuses for users::UserError {
    fn refusal(&self) -> Refusal {
        use users::UserError as E;
        match self {
            E::Invalid(_) => Refusal::Invalid,
            E::Conflict(_) => Refusal::Conflict,
            E::NotFound(_) => Refusal::NotFound,
            E::Unauthorized => Refusal::Unauthorized,
            E::Forbidden(_) => Refusal::Forbidden,
            E::Busy => Refusal::Busy,
            E::Internal(_) => Refusal::Internal,
        }
    }
}

impl Refuses for robots::RobotError {
    fn refusal(&self) -> Refusal {
        use robots::RobotError as E;
        match self {
            E::Invalid(_) => Refusal::Invalid,
            E::Conflict(_) => Refusal::Conflict,
            E::NotFound(_) => Refusal::NotFound,
            E::Unauthorized => Refusal::Unauthorized,
            E::Forbidden(_) => Refusal::Forbidden,
            E::Internal(_) => Refusal::Internal,
        }
    }
}

impl Refuses for additions::AdditionError {
    fn refusal(&self) -> Refusal {
        use additions::AdditionError as E;
        match self {
            E::Unsupported(_) => Refusal::Invalid,
            E::NotFound(_) => Refusal::NotFound,
            E::Internal(_) => Refusal::Internal,
        }
    }
}
