//! Installed packages as their package managers record them: dpkg's `status` (and the
//! `status.d` files of distroless images), apk's `installed`.

mod apk;
mod dpkg;

pub use apk::parse_apk_installed;
pub use dpkg::parse_dpkg_status;

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Package {
    /// The binary package's name.
    pub name: String,
    pub version: String,
    /// The source package it was built from (what distributions' advisories name), when it
    /// differs.
    pub source_name: Option<String>,
    /// The source package's version, when it differs from `version` (a binNMU's `+b1`).
    pub source_version: Option<String>,
    pub architecture: Option<String>,
    pub licenses: Vec<String>,
}

impl Package {
    /// The name an advisory names: the source package's.
    pub fn advisory_name(&self) -> &str {
        self.source_name.as_deref().unwrap_or(&self.name)
    }

    /// The version an advisory's ranges are read against: the source package's.
    pub fn advisory_version(&self) -> &str {
        self.source_version.as_deref().unwrap_or(&self.version)
    }

    /// Each (name, version) an advisory may be filed under: the source package's (Debian's
    /// feeds, OSV's Ubuntu records), then, when it differs, the binary package's (Ubuntu's
    /// USN OVAL names binary packages, at their own versions).
    pub fn advisory_keys(&self) -> impl Iterator<Item = (&str, &str)> {
        let source = (self.advisory_name(), self.advisory_version());
        let binary = (self.name.as_str(), self.version.as_str());
        std::iter::once(source).chain((binary.0 != source.0).then_some(binary))
    }
}

/// Why a package database could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{database}: {reason}")]
pub struct PkgDbError {
    pub database: &'static str,
    pub reason: String,
}
