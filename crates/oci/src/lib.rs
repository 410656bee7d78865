//! The vocabulary of the OCI Distribution and Image specifications, as pure functions and types.
//!
//! Nothing here performs I/O: every other crate builds on these definitions, so they must stay
//! cheap to compile and easy to test in isolation.

pub mod digest;
pub mod error;
pub mod manifest;
pub mod media_type;
pub mod name;
pub mod range;

pub use digest::{Algorithm, Digest, DigestError, Hasher};
pub use error::ErrorCode;
pub use manifest::{Descriptor, ManifestError, ParsedManifest};
pub use name::{NameError, Reference, RepositoryName, Tag};
