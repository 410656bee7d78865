//! CVE allowlists (Harbor's): the system's, and each project's. What "prevent vulnerable
//! images" exempts in a project is the system's unless its `reuse_sys_cve_allowlist` is
//! "false" (Harbor's default is to reuse it); an expired allowlist exempts nothing.

use std::collections::{BTreeSet, HashMap};

use berth_auth::rbac::{self, Policy, Subject};
use berth_db::allowlists::AllowlistRow;
use berth_db::{Db, DbError};

use crate::cache::Change;
use crate::projects::{ProjectError, ProjectRef, Projects};

/// Harbor's `CVEAllowlist`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CveAllowlist {
    /// 0 until one is set.
    pub id: i64,
    /// 0 for the system's.
    pub project_id: i64,
    /// Seconds since the epoch; `None`: it never expires.
    pub expires_at: Option<i64>,
    pub items: Vec<String>,
    /// Milliseconds since the epoch (0 until one is set).
    pub created_at: i64,
    pub updated_at: i64,
}

impl CveAllowlist {
    fn from_row(row: AllowlistRow) -> CveAllowlist {
        CveAllowlist {
            id: row.id,
            project_id: row.project_id.unwrap_or(0),
            expires_at: row.expires_at,
            // Written by `AllowlistInput` only; anything else reads as empty.
            items: serde_json::from_str(&row.items).unwrap_or_default(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// An allowlist as a request gives it, checked: ids trimmed, none empty, none twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowlistInput {
    expires_at: Option<i64>,
    items: Vec<String>,
}

impl AllowlistInput {
    /// Ids of any scheme are taken (CVE, GHSA, RUSTSEC, ALPINE...), since reports name
    /// findings by them all; an id is at most 128 characters, without spaces.
    pub fn checked(expires_at: Option<i64>, items: Vec<String>) -> Result<AllowlistInput, ProjectError> {
        if expires_at.is_some_and(|at| at < 0) {
            return Err(ProjectError::Invalid("expires_at must be seconds since the epoch".into()));
        }
        let mut seen = BTreeSet::new();
        let mut ids = Vec::with_capacity(items.len());
        for item in items {
            let id = item.trim();
            if id.is_empty() || id.len() > 128 || id.chars().any(char::is_whitespace) {
                return Err(ProjectError::Invalid(format!("invalid vulnerability id {item:?} in the allowlist")));
            }
            if !seen.insert(id.to_string()) {
                return Err(ProjectError::Invalid(format!("{id} is twice in the allowlist")));
            }
            ids.push(id.to_string());
        }
        Ok(AllowlistInput { expires_at, items: ids })
    }

    pub(crate) fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }

    pub(crate) fn items_json(&self) -> String {
        serde_json::Value::from(self.items.clone()).to_string()
    }
}

/// The allowlist a project's pulls are held against, while it is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveAllowlist {
    pub ids: BTreeSet<String>,
    /// Seconds since the epoch.
    pub expires_at: Option<i64>,
}

impl ActiveAllowlist {
    /// Whether it is in force at `now` (seconds since the epoch): not expired.
    pub fn in_force(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }

    /// Whether it exempts `id` at `now` (seconds since the epoch).
    pub fn exempts(&self, id: &str, now: i64) -> bool {
        self.in_force(now) && self.ids.contains(id)
    }
}

/// The allowlist in force for project `project_id`, as `reuse_system` (its
/// `reuse_sys_cve_allowlist`) picks it; `None` when it lists nothing.
pub(crate) async fn active_allowlist(
    db: &Db,
    project_id: i64,
    reuse_system: bool,
) -> Result<Option<ActiveAllowlist>, DbError> {
    let row = db.cve_allowlist((!reuse_system).then_some(project_id)).await?;
    Ok(row
        .map(CveAllowlist::from_row)
        .filter(|l| !l.items.is_empty())
        .map(|l| ActiveAllowlist { ids: l.items.into_iter().collect(), expires_at: l.expires_at }))
}

impl Projects {
    /// The system's allowlist (any signed-in caller may read it, as in Harbor).
    pub async fn system_cve_allowlist(&self, subject: &Subject) -> Result<CveAllowlist, ProjectError> {
        if matches!(subject, Subject::Anonymous) {
            return Err(ProjectError::Unauthorized);
        }
        Ok(self.db.cve_allowlist(None).await?.map(CveAllowlist::from_row).unwrap_or_default())
    }

    /// Replaces the system's allowlist (configuration:update, a system administrator's).
    pub async fn set_system_cve_allowlist(
        &self,
        subject: &Subject,
        allowlist: &AllowlistInput,
    ) -> Result<(), ProjectError> {
        if matches!(subject, Subject::Anonymous) {
            return Err(ProjectError::Unauthorized);
        }
        if !Policy::allows_system(subject, rbac::Resource::Configuration, rbac::Action::Update) {
            return Err(ProjectError::Forbidden("only system administrators may set the system allowlist".into()));
        }
        let set = self.db.set_cve_allowlist(None, allowlist.expires_at(), &allowlist.items_json()).await;
        // Every project that reuses it holds it in its cached facts.
        self.caches.changed(Change::All).await;
        Ok(set?)
    }

    /// Replaces a project's own allowlist (project:update).
    pub async fn set_project_cve_allowlist(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        allowlist: &AllowlistInput,
    ) -> Result<(), ProjectError> {
        let view = self.authorized(subject, project, rbac::Resource::Project, rbac::Action::Update).await?;
        let set = self.db.set_cve_allowlist(Some(view.id), allowlist.expires_at(), &allowlist.items_json()).await;
        self.caches.changed(Change::Project(view.name)).await;
        Ok(set?)
    }

    /// The own allowlists of those of projects `ids` that ever set one.
    pub(crate) async fn project_cve_allowlists(&self, ids: &[i64]) -> Result<HashMap<i64, CveAllowlist>, DbError> {
        Ok(self
            .db
            .project_cve_allowlists(ids)
            .await?
            .into_iter()
            .map(CveAllowlist::from_row)
            .map(|l| (l.project_id, l))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_trimmed_and_refused_when_empty_spaced_or_twice() {
        let ok = AllowlistInput::checked(Some(10), vec![" CVE-2024-1 ".into(), "GHSA-xxxx-yyyy-zzzz".into()]).unwrap();
        assert_eq!(ok.items_json(), r#"["CVE-2024-1","GHSA-xxxx-yyyy-zzzz"]"#);
        assert!(AllowlistInput::checked(None, vec!["".into()]).is_err());
        assert!(AllowlistInput::checked(None, vec!["CVE 1".into()]).is_err());
        assert!(AllowlistInput::checked(None, vec!["CVE-1".into(), "CVE-1 ".into()]).is_err());
        assert!(AllowlistInput::checked(Some(-1), vec![]).is_err());
    }

    #[test]
    fn an_expired_allowlist_exempts_nothing() {
        let list = ActiveAllowlist { ids: ["CVE-1".to_string()].into(), expires_at: Some(100) };
        assert!(list.exempts("CVE-1", 99));
        assert!(!list.exempts("CVE-1", 100));
        assert!(!list.exempts("CVE-2", 1));
        let forever = ActiveAllowlist { expires_at: None, ..list };
        assert!(forever.exempts("CVE-1", i64::MAX));
    }
}
