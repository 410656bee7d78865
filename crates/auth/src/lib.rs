//! Identities and access decisions.
//!
//! `rbac` answers one question for every API: may this subject perform this action on this
//! resource of this project? `password` hashes and checks secrets. Nothing here touches
//! storage or HTTP.

pub mod hashing;
pub mod password;
pub mod rbac;
pub mod seal;
pub mod secret;
pub mod token;
pub mod verified;
