//! Scanner registrations as Harbor's API shows them (`/scanners`, a project's scanner). The
//! built-in scanner is the one registration, the default and every project's: registering
//! external scanner adapters is refused until Berth calls them, rather than stored and left
//! unused. Its metadata tells the vulnerability database's age, as Trivy's adapter does.

use berth_auth::rbac::{self, Subject};
use berth_scan::job::BUILTIN_REGISTRATION;
use berth_scan::report::{ScannerRef, VULNERABILITY_REPORT};

use crate::projects::{ProjectError, ProjectRef, Projects};

/// Harbor's `ScannerRegistration`, as far as the built-in scanner has its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ScannerRegistration {
    pub uuid: String,
    pub name: String,
    pub description: String,
    pub url: String,
    pub is_default: bool,
    pub scanner: ScannerRef,
}

/// Harbor's `ScannerAdapterMetadata` of a registration.
#[derive(Debug, Clone, PartialEq)]
pub struct ScannerMetadata {
    pub scanner: ScannerRef,
    pub consumes: Vec<&'static str>,
    pub produces: Vec<&'static str>,
    /// The newest import of a vulnerability feed (ms since the epoch), if any was imported.
    pub database_updated_at: Option<i64>,
    /// The feeds imported, with their advisories.
    pub feeds: Vec<(String, i64)>,
}

/// Why a registration is refused (what Berth cannot do yet, or may not change).
pub const EXTERNAL_REFUSED: &str =
    "external scanner adapters are not supported yet: Berth's built-in scanner is the only registration";

fn builtin() -> ScannerRegistration {
    ScannerRegistration {
        uuid: BUILTIN_REGISTRATION.to_string(),
        name: "Berth".to_string(),
        description: "Berth's built-in scanner: OS and language packages against the imported vulnerability database"
            .to_string(),
        url: "internal://berth-scanner".to_string(),
        is_default: true,
        scanner: ScannerRef::builtin(),
    }
}

impl Projects {
    /// The registrations (the built-in scanner).
    pub fn scanners(&self) -> Vec<ScannerRegistration> {
        vec![builtin()]
    }

    /// Registration `uuid`.
    pub fn scanner(&self, uuid: &str) -> Result<ScannerRegistration, ProjectError> {
        self.scanners()
            .into_iter()
            .find(|s| s.uuid == uuid)
            .ok_or_else(|| ProjectError::NotFound(format!("scanner {uuid}")))
    }

    /// What registration `uuid` scans and reports, and its database's age.
    pub async fn scanner_metadata(&self, uuid: &str) -> Result<ScannerMetadata, ProjectError> {
        let registration = self.scanner(uuid)?;
        let feeds = self.db.vuln_feeds().await?;
        Ok(ScannerMetadata {
            scanner: registration.scanner,
            consumes: vec![berth_oci::media_type::OCI_MANIFEST, berth_oci::media_type::DOCKER_MANIFEST],
            produces: vec![VULNERABILITY_REPORT],
            database_updated_at: feeds.iter().map(|f| f.imported_at).max(),
            feeds: feeds.into_iter().map(|f| (f.name, f.advisories)).collect(),
        })
    }

    /// The scanner of a project (project scanner:read): the built-in one.
    pub async fn project_scanner(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
    ) -> Result<ScannerRegistration, ProjectError> {
        self.authorized(subject, project, rbac::Resource::Scanner, rbac::Action::Read).await?;
        Ok(builtin())
    }

    /// Sets a project's scanner (project scanner:create): the built-in one is taken, any other
    /// id is not a registration.
    pub async fn set_project_scanner(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        uuid: &str,
    ) -> Result<(), ProjectError> {
        self.authorized(subject, project, rbac::Resource::Scanner, rbac::Action::Create).await?;
        self.scanner(uuid).map(|_| ())
    }

    /// The registrations a project may choose (project scanner:create).
    pub async fn project_scanner_candidates(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
    ) -> Result<Vec<ScannerRegistration>, ProjectError> {
        self.authorized(subject, project, rbac::Resource::Scanner, rbac::Action::Create).await?;
        Ok(self.scanners())
    }
}
