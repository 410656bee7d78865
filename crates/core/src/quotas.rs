//! Project quotas as Harbor's `/quotas` shows them: system administrators list and set them;
//! a project's members read its own. The limit itself is kept in the write that adds content
//! (`berth_db::quotas`), where usage cannot race.

use berth_auth::rbac::{self, Policy, Subject};
use berth_db::ListQuery;
pub use berth_db::quotas::{MAX_STORAGE, QuotaLimits, QuotaRow};

use crate::projects::{ProjectError, ProjectRef, Projects};

/// A storage limit Harbor accepts: -1 (none), or 1 byte to 1024 TiB.
pub fn validate_storage(limit: i64) -> Result<(), ProjectError> {
    if limit == -1 || (1..=MAX_STORAGE).contains(&limit) {
        Ok(())
    } else {
        Err(ProjectError::Invalid(format!(
            "storage limit {limit} is out of range: -1 (unlimited) or 1 to {MAX_STORAGE} bytes"
        )))
    }
}

fn system(subject: &Subject, action: rbac::Action) -> Result<(), ProjectError> {
    if Policy::allows_system(subject, rbac::Resource::Quota, action) {
        Ok(())
    } else if subject.is_anonymous() {
        Err(ProjectError::Unauthorized)
    } else {
        Err(ProjectError::Forbidden(format!("quota:{action} is for system administrators")))
    }
}

impl Projects {
    /// Quotas of every project (or of project `reference_id`): system administrators.
    pub async fn quotas(
        &self,
        subject: &Subject,
        reference_id: Option<i64>,
        query: &ListQuery,
        page: i64,
        size: i64,
    ) -> Result<(Vec<QuotaRow>, i64), ProjectError> {
        system(subject, rbac::Action::List)?;
        Ok(self.db.list_quotas(reference_id, query, size, (page - 1) * size).await?)
    }

    /// One quota: system administrators, or those who may read its project's quota.
    pub async fn quota(&self, subject: &Subject, id: i64) -> Result<QuotaRow, ProjectError> {
        let not_found = || ProjectError::NotFound(format!("quota {id}"));
        let quota = self.db.quota(id).await?.ok_or_else(not_found)?;
        if system(subject, rbac::Action::Read).is_err() {
            // As for the project's other resources: its members read it, others are refused.
            self.authorized(subject, &ProjectRef::Id(quota.project_id), rbac::Resource::Quota, rbac::Action::Read)
                .await
                .map_err(|e| if matches!(e, ProjectError::NotFound(_)) { not_found() } else { e })?;
        }
        Ok(quota)
    }

    /// Sets a quota's limits (those not given stay): system administrators. A limit below the
    /// usage is allowed (as in Harbor): writes that add to it are refused until it falls under.
    pub async fn set_quota(&self, subject: &Subject, id: i64, limits: &QuotaLimits) -> Result<(), ProjectError> {
        system(subject, rbac::Action::Update)?;
        if let Some(storage) = limits.storage {
            validate_storage(storage)?;
        }
        for (name, count) in [
            ("tags_per_repository", limits.tags_per_repository),
            ("artifacts_per_repository", limits.artifacts_per_repository),
        ] {
            if count.is_some_and(|n| n != -1 && n < 1) {
                return Err(ProjectError::Invalid(format!("{name} must be -1 (unlimited) or at least 1")));
            }
        }
        if limits == &QuotaLimits::default() {
            return Err(ProjectError::Invalid("hard names no limit to set".into()));
        }
        if self.db.set_quota(id, limits).await? { Ok(()) } else { Err(ProjectError::NotFound(format!("quota {id}"))) }
    }
}
