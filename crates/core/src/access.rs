//! What a caller may do in a project: the one lookup behind every access decision, on `/v2`
//! (through `Identities`, which the API's authorizer asks) and on `/api/v2.0` (through
//! `Projects`). Answered from the process's caches, which every write invalidates on every
//! replica, so a decision costs no query on the hot path and never outlives a change for long.

use berth_auth::rbac::{self, Policy, ProjectContext, Role, Subject};
use berth_db::{Db, DbError};

use crate::cache::{Caches, ProjectFacts};

/// A project as the access decision sees it, with the caller's role in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectAccess {
    pub id: i64,
    pub name: String,
    pub public: bool,
    pub role: Option<Role>,
    pub created_at: i64,
}

impl ProjectAccess {
    pub fn context(&self) -> ProjectContext<'_> {
        ProjectContext { name: &self.name, public: self.public, role: self.role }
    }

    /// May `subject` do `action` on `resource` here?
    pub fn allows(&self, subject: &Subject, resource: rbac::Resource, action: rbac::Action) -> bool {
        Policy::allows(subject, &self.context(), resource, action)
    }

    /// May `subject` know more of the project than that it exists: a reader of it (a member,
    /// anyone for a public one), or a robot with any permission in it, which Harbor decides
    /// by the robot's own permissions rather than by a project read it was never given.
    pub fn visible_to(&self, subject: &Subject) -> bool {
        if self.allows(subject, rbac::Resource::Project, rbac::Action::Read) {
            return true;
        }
        match subject {
            Subject::Robot { permissions, .. } => {
                permissions.iter().any(|p| p.namespace == self.name || p.namespace == "*")
            }
            _ => false,
        }
    }
}

/// The lookup; clones share the caches.
#[derive(Clone)]
pub struct AccessLookup {
    db: Db,
    caches: Option<Caches>,
}

impl AccessLookup {
    /// `caches`: the registry's, which the writers tell of their changes (`None`: every
    /// lookup reads the database).
    pub fn new(db: Db, caches: Option<Caches>) -> AccessLookup {
        AccessLookup { db, caches }
    }

    /// The named project and the subject's role in it, or `None` when there is no such project.
    pub async fn project(&self, subject: &Subject, project: &str) -> Result<Option<ProjectAccess>, DbError> {
        let Some(facts) = self.facts(project).await? else {
            return Ok(None);
        };
        let role = match subject {
            Subject::User { id, .. } => self.role(&facts, *id).await?,
            _ => None,
        };
        Ok(Some(ProjectAccess {
            id: facts.id,
            name: facts.name,
            public: facts.public,
            role,
            created_at: facts.created_at,
        }))
    }

    /// The project of that id, as [`AccessLookup::project`].
    pub async fn project_by_id(&self, subject: &Subject, id: i64) -> Result<Option<ProjectAccess>, DbError> {
        match self.db.project_by_id(id).await? {
            Some(row) => self.project(subject, &row.name).await,
            None => Ok(None),
        }
    }

    /// A project's facts, from the caches when they hold them.
    pub async fn facts(&self, project: &str) -> Result<Option<ProjectFacts>, DbError> {
        if let Some(facts) = self.caches.as_ref().and_then(|c| c.project(project)) {
            return Ok(Some(facts));
        }
        let generation = self.caches.as_ref().map(|c| c.generation());
        let Some(p) = self.db.project_by_name(project).await? else {
            return Ok(None);
        };
        let metadata = self.db.project_metadata(p.id).await?;
        let value = |key: &str| metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let public = value("public") == Some("true");
        // Harbor's default threshold when none is set is "low".
        let prevent_vul =
            (value("prevent_vul") == Some("true")).then(|| value("severity").unwrap_or("low").to_string());
        let auto_scan = value("auto_scan") == Some("true");
        // Read only for the policy that uses it. Harbor reuses the system's unless told not to.
        let cve_allowlist = match prevent_vul {
            Some(_) => {
                let reuse_system = value("reuse_sys_cve_allowlist") != Some("false");
                crate::allowlists::active_allowlist(&self.db, p.id, reuse_system).await?.map(std::sync::Arc::new)
            }
            None => None,
        };
        let facts = ProjectFacts {
            id: p.id,
            name: p.name,
            public,
            created_at: p.created_at,
            prevent_vul,
            auto_scan,
            cve_allowlist,
        };
        if let (Some(caches), Some(generation)) = (&self.caches, generation) {
            caches.put_project(generation, &facts);
        }
        Ok(Some(facts))
    }

    async fn role(&self, project: &ProjectFacts, user: i64) -> Result<Option<Role>, DbError> {
        if let Some(role) = self.caches.as_ref().and_then(|c| c.role(&project.name, user)) {
            return Ok(role);
        }
        let generation = self.caches.as_ref().map(|c| c.generation());
        let role = self.db.member_role(project.id, user).await?.and_then(Role::from_id);
        if let (Some(caches), Some(generation)) = (&self.caches, generation) {
            caches.put_role(generation, &project.name, user, role);
        }
        Ok(role)
    }
}
