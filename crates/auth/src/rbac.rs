//! Harbor's access model: five project roles, robot permissions, public projects and system
//! administrators, evaluated by one function, [`Policy::allows`], which every API asks.
//!
//! The role tables restate Harbor's role → (resource, action) matrix (harbor.md 2.1, Harbor's
//! `rbac_role.go`) without its Helm-chart entries, which Harbor no longer serves.

use std::fmt;
use std::str::FromStr;

/// `as_str`, `FromStr` and `Display` for an enum named by a table of (variant, Harbor's string).
macro_rules! named_by_table {
    ($t:ty, $table:ident) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                $table.iter().find(|(v, _)| *v == self).map_or("", |(_, s)| s)
            }
        }

        impl FromStr for $t {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                $table.iter().find(|(_, n)| *n == s).map(|(v, _)| *v).ok_or_else(|| UnknownName(s.to_string()))
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// An action on a resource (Harbor's action strings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    All,
    Pull,
    Push,
    Create,
    Read,
    Update,
    Delete,
    List,
    Operate,
    ScannerPull,
    Stop,
}

const ACTIONS: &[(Action, &str)] = &[
    (Action::All, "*"),
    (Action::Pull, "pull"),
    (Action::Push, "push"),
    (Action::Create, "create"),
    (Action::Read, "read"),
    (Action::Update, "update"),
    (Action::Delete, "delete"),
    (Action::List, "list"),
    (Action::Operate, "operate"),
    (Action::ScannerPull, "scanner-pull"),
    (Action::Stop, "stop"),
];

named_by_table!(Action, ACTIONS);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown name {0:?}")]
pub struct UnknownName(pub String);

/// A resource kind (Harbor's resource strings). `Project` is Harbor's "self" resource
/// (the project itself) and also the system-level "project" resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    All,
    Project,
    Member,
    Metadata,
    Log,
    Label,
    Quota,
    Repository,
    TagRetention,
    ImmutableTag,
    Configuration,
    Robot,
    NotificationPolicy,
    Scan,
    Sbom,
    Scanner,
    Artifact,
    Tag,
    Accessory,
    ArtifactAddition,
    ArtifactLabel,
    PreheatPolicy,
    ExportCve,
    AuditLog,
    Catalog,
    User,
    UserGroup,
    Registry,
    Replication,
    GarbageCollection,
    JobserviceMonitor,
}

const RESOURCES: &[(Resource, &str)] = &[
    (Resource::All, "*"),
    (Resource::Project, "project"),
    (Resource::Member, "member"),
    (Resource::Metadata, "metadata"),
    (Resource::Log, "log"),
    (Resource::Label, "label"),
    (Resource::Quota, "quota"),
    (Resource::Repository, "repository"),
    (Resource::TagRetention, "tag-retention"),
    (Resource::ImmutableTag, "immutable-tag"),
    (Resource::Configuration, "configuration"),
    (Resource::Robot, "robot"),
    (Resource::NotificationPolicy, "notification-policy"),
    (Resource::Scan, "scan"),
    (Resource::Sbom, "sbom"),
    (Resource::Scanner, "scanner"),
    (Resource::Artifact, "artifact"),
    (Resource::Tag, "tag"),
    (Resource::Accessory, "accessory"),
    (Resource::ArtifactAddition, "artifact-addition"),
    (Resource::ArtifactLabel, "artifact-label"),
    (Resource::PreheatPolicy, "preheat-policy"),
    (Resource::ExportCve, "export-cve"),
    (Resource::AuditLog, "audit-log"),
    (Resource::Catalog, "catalog"),
    (Resource::User, "user"),
    (Resource::UserGroup, "user-group"),
    (Resource::Registry, "registry"),
    (Resource::Replication, "replication"),
    (Resource::GarbageCollection, "garbage-collection"),
    (Resource::JobserviceMonitor, "jobservice-monitor"),
];

named_by_table!(Resource, RESOURCES);

/// The five project roles, with Harbor's ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    ProjectAdmin = 1,
    Developer = 2,
    Guest = 3,
    Maintainer = 4,
    LimitedGuest = 5,
}

impl Role {
    pub fn from_id(id: i64) -> Option<Role> {
        match id {
            1 => Some(Role::ProjectAdmin),
            2 => Some(Role::Developer),
            3 => Some(Role::Guest),
            4 => Some(Role::Maintainer),
            5 => Some(Role::LimitedGuest),
            _ => None,
        }
    }

    pub fn id(self) -> i64 {
        self as i64
    }

    /// Harbor's role name as the API shows it (`role_name`).
    pub fn name(self) -> &'static str {
        match self {
            Role::ProjectAdmin => "projectAdmin",
            Role::Developer => "developer",
            Role::Guest => "guest",
            Role::Maintainer => "maintainer",
            Role::LimitedGuest => "limitedGuest",
        }
    }

    /// What the role may do in its project.
    pub fn policies(self) -> &'static [(Resource, &'static [Action])] {
        match self {
            Role::ProjectAdmin => PROJECT_ADMIN,
            Role::Maintainer => MAINTAINER,
            Role::Developer => DEVELOPER,
            Role::Guest => GUEST,
            Role::LimitedGuest => LIMITED_GUEST,
        }
    }

    pub fn allows(self, resource: Resource, action: Action) -> bool {
        table_allows(self.policies(), resource, action)
    }
}

fn table_allows(table: &[(Resource, &[Action])], resource: Resource, action: Action) -> bool {
    table.iter().any(|(r, actions)| *r == resource && actions.contains(&action))
}

use Action::*;

const CRUDL: &[Action] = &[Create, Read, Update, Delete, List];

const PROJECT_ADMIN: &[(Resource, &[Action])] = &[
    (Resource::Project, &[Read, Update, Delete]),
    (Resource::Member, CRUDL),
    (Resource::Metadata, &[Create, Read, Update, Delete, List]),
    (Resource::Log, &[List]),
    (Resource::Label, CRUDL),
    (Resource::Quota, &[Read]),
    (Resource::Repository, &[Create, Read, Update, Delete, List, Pull, Push]),
    (Resource::TagRetention, &[Create, Read, Update, Delete, List, Operate]),
    (Resource::ImmutableTag, &[Create, Update, Delete, List]),
    (Resource::Configuration, &[Read, Update]),
    (Resource::Robot, CRUDL),
    (Resource::NotificationPolicy, CRUDL),
    (Resource::Scan, &[Create, Read, Stop]),
    (Resource::Sbom, &[Create, Read, Stop]),
    (Resource::Scanner, &[Read, Create]),
    (Resource::Artifact, &[Create, Read, Delete, List]),
    (Resource::ArtifactAddition, &[Read]),
    (Resource::Tag, &[List, Create, Delete]),
    (Resource::Accessory, &[List]),
    (Resource::ArtifactLabel, &[Create, Delete]),
    (Resource::PreheatPolicy, CRUDL),
    (Resource::ExportCve, &[Create, Read]),
];

const MAINTAINER: &[(Resource, &[Action])] = &[
    (Resource::Project, &[Read]),
    (Resource::Member, &[Read, List]),
    (Resource::Metadata, &[Create, Read, Update, Delete]),
    (Resource::Log, &[List]),
    (Resource::Quota, &[Read]),
    (Resource::Label, CRUDL),
    (Resource::Repository, &[Create, Read, Update, Delete, List, Push, Pull]),
    (Resource::TagRetention, &[Create, Read, Update, Delete, List, Operate]),
    (Resource::Accessory, &[List]),
    (Resource::ImmutableTag, &[Create, Update, Delete, List]),
    (Resource::Configuration, &[Read]),
    (Resource::Robot, &[Read, List]),
    (Resource::NotificationPolicy, &[List, Read]),
    (Resource::Scan, &[Create, Read, Stop]),
    (Resource::Sbom, &[Create, Read, Stop]),
    (Resource::Scanner, &[Read]),
    (Resource::Artifact, &[Create, Read, Delete, List]),
    (Resource::ArtifactAddition, &[Read]),
    (Resource::Tag, &[List, Create, Delete]),
    (Resource::ArtifactLabel, &[Create, Delete]),
    (Resource::ExportCve, &[Create, Read]),
];

const DEVELOPER: &[(Resource, &[Action])] = &[
    (Resource::Project, &[Read]),
    (Resource::Member, &[Read, List]),
    (Resource::Log, &[List]),
    (Resource::Label, &[Read, List]),
    (Resource::Quota, &[Read]),
    (Resource::Repository, &[Create, Read, Update, List, Push, Pull]),
    (Resource::TagRetention, &[Create, Read, Update, Delete, List, Operate]),
    (Resource::Configuration, &[Read]),
    (Resource::Robot, &[Read, List]),
    (Resource::Scan, &[Read]),
    (Resource::Sbom, &[Read]),
    (Resource::Scanner, &[Read]),
    (Resource::Artifact, &[Create, Read, List]),
    (Resource::ArtifactAddition, &[Read]),
    (Resource::Tag, &[List, Create]),
    (Resource::Accessory, &[List]),
    (Resource::ArtifactLabel, &[Create, Delete]),
];

const GUEST: &[(Resource, &[Action])] = &[
    (Resource::Project, &[Read]),
    (Resource::Member, &[Read, List]),
    (Resource::Log, &[List]),
    (Resource::Label, &[Read, List]),
    (Resource::Quota, &[Read]),
    (Resource::Repository, &[Read, List, Pull]),
    (Resource::Configuration, &[Read]),
    (Resource::Robot, &[Read, List]),
    (Resource::Scan, &[Read]),
    (Resource::Sbom, &[Read]),
    (Resource::Scanner, &[Read]),
    (Resource::Tag, &[List]),
    (Resource::Accessory, &[List]),
    (Resource::Artifact, &[Read, List]),
    (Resource::ArtifactAddition, &[Read]),
];

const LIMITED_GUEST: &[(Resource, &[Action])] = &[
    (Resource::Project, &[Read]),
    (Resource::Quota, &[Read]),
    (Resource::Repository, &[List, Pull]),
    (Resource::Configuration, &[Read]),
    (Resource::Scan, &[Read]),
    (Resource::Sbom, &[Read]),
    (Resource::Scanner, &[Read]),
    (Resource::Tag, &[List]),
    (Resource::Accessory, &[List]),
    (Resource::Artifact, &[Read, List]),
    (Resource::ArtifactAddition, &[Read]),
];

/// What anyone, signed in or not, may do in a public project.
const PUBLIC_VISITOR: &[(Resource, &[Action])] = &[
    (Resource::Project, &[Read]),
    (Resource::Repository, &[Read, List, Pull]),
    (Resource::Tag, &[List]),
    (Resource::Accessory, &[List]),
    (Resource::Artifact, &[Read, List]),
    (Resource::ArtifactAddition, &[Read]),
    (Resource::Label, &[Read, List]),
    (Resource::Scan, &[Read]),
    (Resource::Sbom, &[Read]),
];

/// Every (resource, action) `subject` may perform in `project`, as [`Policy::allows`] decides.
pub fn project_permissions(subject: &Subject, project: &ProjectContext<'_>) -> Vec<(Resource, Action)> {
    let mut out = Vec::new();
    for table in [PROJECT_ADMIN, PUBLIC_VISITOR] {
        for (resource, actions) in table {
            for action in *actions {
                if !out.contains(&(*resource, *action)) && Policy::allows(subject, project, *resource, *action) {
                    out.push((*resource, *action));
                }
            }
        }
    }
    out
}

/// What a system-level robot may be given (Harbor's robot permission sets, system scope).
pub const ROBOT_SYSTEM_PERMISSIONS: &[(Resource, &[Action])] = &[
    (Resource::AuditLog, &[List]),
    (Resource::Project, &[List, Create]),
    (Resource::Replication, &[Read, Create, List]),
    (Resource::Registry, &[Read, Create, Delete, List, Update]),
    (Resource::GarbageCollection, &[Read, Create, List, Update, Stop]),
    (Resource::JobserviceMonitor, &[List, Stop]),
    (Resource::Scanner, &[Read, Create, Delete, List, Update]),
    (Resource::Label, &[Read, Create, Delete, Update]),
    (Resource::Catalog, &[Read]),
    (Resource::Quota, &[Read, List, Update]),
    (Resource::Robot, &[Create, Read, List, Delete]),
    (Resource::User, &[Create, Read, Update, List, Delete]),
    (Resource::UserGroup, &[Create, Read, Update, List, Delete]),
];

/// What a project-level permission of a robot may contain (Harbor's project scope).
pub const ROBOT_PROJECT_PERMISSIONS: &[(Resource, &[Action])] = &[
    (Resource::Log, &[List]),
    (Resource::Project, &[Read, Delete, Update]),
    (Resource::Metadata, &[Read, Create, Delete, List, Update]),
    (Resource::Repository, &[Read, Update, Delete, List, Pull, Push]),
    (Resource::Artifact, &[Read, Create, List, Delete]),
    (Resource::Scan, &[Create, Read, Stop]),
    (Resource::Sbom, &[Create, Stop, Read]),
    (Resource::Tag, &[Create, List, Delete]),
    (Resource::Accessory, &[List]),
    (Resource::ArtifactAddition, &[Read]),
    (Resource::ArtifactLabel, &[Create, Delete]),
    (Resource::Scanner, &[Create, Read]),
    (Resource::PreheatPolicy, &[Read, Create, Delete, List, Update]),
    (Resource::ImmutableTag, &[Create, Delete, List, Update]),
    (Resource::NotificationPolicy, &[Read, Create, Delete, List, Update]),
    (Resource::TagRetention, &[Read, Create, Delete, List, Update]),
    (Resource::Label, &[Read, Create, Delete, List, Update]),
    (Resource::Quota, &[Read]),
    (Resource::Robot, &[Create, Read, List, Delete]),
    (Resource::ExportCve, &[Create, Read]),
    (Resource::Member, &[Create, Read, Update, List, Delete]),
];

/// One permission of a robot account: an action on a resource, within a namespace (a project
/// name, or `*` for every project; `/` for system-level permissions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    pub namespace: String,
    pub resource: Resource,
    pub action: Action,
}

/// Who is asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Anonymous,
    User { id: i64, name: String, sysadmin: bool },
    Robot { id: i64, name: String, permissions: Vec<Permission> },
}

impl Subject {
    pub fn is_sysadmin(&self) -> bool {
        matches!(self, Subject::User { sysadmin: true, .. })
    }

    pub fn is_anonymous(&self) -> bool {
        matches!(self, Subject::Anonymous)
    }
}

/// What the policy needs to know of a project to decide.
#[derive(Clone, Debug)]
pub struct ProjectContext<'a> {
    pub name: &'a str,
    pub public: bool,
    /// The subject's role in the project, if a user member (directly or through a group).
    pub role: Option<Role>,
}

/// The one access decision.
pub struct Policy;

impl Policy {
    /// May `subject` perform `action` on `resource` inside `project`?
    pub fn allows(subject: &Subject, project: &ProjectContext<'_>, resource: Resource, action: Action) -> bool {
        if subject.is_sysadmin() {
            return true;
        }
        if project.public && table_allows(PUBLIC_VISITOR, resource, action) {
            return true;
        }
        match subject {
            Subject::Anonymous => false,
            Subject::User { .. } => project.role.is_some_and(|r| r.allows(resource, action)),
            Subject::Robot { permissions, .. } => permissions.iter().any(|p| {
                (p.namespace == project.name || p.namespace == "*")
                    && (p.resource == resource || p.resource == Resource::All)
                    && (p.action == action || p.action == Action::All)
            }),
        }
    }

    /// May `subject` perform a system-level `action` on `resource` (outside any project)?
    pub fn allows_system(subject: &Subject, resource: Resource, action: Action) -> bool {
        match subject {
            Subject::User { sysadmin, .. } => *sysadmin,
            Subject::Anonymous => false,
            Subject::Robot { permissions, .. } => permissions.iter().any(|p| {
                p.namespace == "/"
                    && (p.resource == resource || p.resource == Resource::All)
                    && (p.action == action || p.action == Action::All)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(sysadmin: bool) -> Subject {
        Subject::User { id: 7, name: "u".into(), sysadmin }
    }

    fn ctx(public: bool, role: Option<Role>) -> ProjectContext<'static> {
        ProjectContext { name: "p", public, role }
    }

    #[test]
    fn names_round_trip() {
        for (a, s) in ACTIONS {
            assert_eq!(s.parse::<Action>().unwrap(), *a);
        }
        for (r, s) in RESOURCES {
            assert_eq!(s.parse::<Resource>().unwrap(), *r);
        }
        assert!("fly".parse::<Action>().is_err());
        for id in 1..=5 {
            assert_eq!(Role::from_id(id).unwrap().id(), id);
        }
        assert_eq!(Role::from_id(6), None);
    }

    #[test]
    fn the_role_matrix_key_points() {
        use Resource as R;
        let can = |role: Role, r: R, a: Action| role.allows(r, a);
        // Push and pull.
        for role in [Role::ProjectAdmin, Role::Maintainer, Role::Developer] {
            assert!(can(role, R::Repository, Push) && can(role, R::Repository, Pull));
        }
        for role in [Role::Guest, Role::LimitedGuest] {
            assert!(!can(role, R::Repository, Push) && can(role, R::Repository, Pull));
        }
        // Deleting artifacts, tags and repositories: maintainer and up.
        for (role, allowed) in [
            (Role::ProjectAdmin, true),
            (Role::Maintainer, true),
            (Role::Developer, false),
            (Role::Guest, false),
            (Role::LimitedGuest, false),
        ] {
            assert_eq!(can(role, R::Artifact, Delete), allowed, "{role:?}");
            assert_eq!(can(role, R::Tag, Delete), allowed, "{role:?}");
            assert_eq!(can(role, R::Repository, Delete), allowed, "{role:?}");
        }
        // Members and robots: only the project admin writes; limited guests cannot even see.
        assert!(can(Role::ProjectAdmin, R::Member, Create) && can(Role::ProjectAdmin, R::Robot, Create));
        for role in [Role::Maintainer, Role::Developer, Role::Guest] {
            assert!(!can(role, R::Member, Create) && !can(role, R::Robot, Create) && can(role, R::Member, List));
        }
        assert!(!can(Role::LimitedGuest, R::Member, List) && !can(Role::LimitedGuest, R::Robot, List));
        assert!(!can(Role::LimitedGuest, R::Label, List) && !can(Role::LimitedGuest, R::Log, List));
        // Project metadata: admin and maintainer per the matrix; delete project: admin only.
        assert!(can(Role::ProjectAdmin, R::Project, Update) && !can(Role::Maintainer, R::Project, Update));
        assert!(can(Role::ProjectAdmin, R::Project, Delete) && !can(Role::Maintainer, R::Project, Delete));
        // Scans: maintainer creates, developer only reads.
        assert!(
            can(Role::Maintainer, R::Scan, Create)
                && !can(Role::Developer, R::Scan, Create)
                && can(Role::Developer, R::Scan, Read)
        );
    }

    #[test]
    fn subjects() {
        let private = ctx(false, None);
        let public = ctx(true, None);
        assert!(!Policy::allows(&Subject::Anonymous, &private, Resource::Repository, Pull));
        assert!(Policy::allows(&Subject::Anonymous, &public, Resource::Repository, Pull));
        assert!(!Policy::allows(&Subject::Anonymous, &public, Resource::Repository, Push));
        assert!(!Policy::allows(&user(false), &private, Resource::Repository, Pull));
        assert!(Policy::allows(&user(false), &ctx(false, Some(Role::Developer)), Resource::Repository, Push));
        assert!(Policy::allows(&user(true), &private, Resource::Project, Delete));
        assert!(Policy::allows_system(&user(true), Resource::User, Create));
        assert!(!Policy::allows_system(&user(false), Resource::User, Create));

        let robot = Subject::Robot {
            id: 1,
            name: "robot$p+ci".into(),
            permissions: vec![
                Permission { namespace: "p".into(), resource: Resource::Repository, action: Pull },
                Permission { namespace: "p".into(), resource: Resource::Repository, action: Push },
            ],
        };
        assert!(Policy::allows(&robot, &private, Resource::Repository, Push));
        assert!(!Policy::allows(&robot, &private, Resource::Repository, Delete));
        assert!(!Policy::allows(
            &robot,
            &ProjectContext { name: "other", public: false, role: None },
            Resource::Repository,
            Pull
        ));
        let everywhere = Subject::Robot {
            id: 2,
            name: "robot$all".into(),
            permissions: vec![Permission { namespace: "*".into(), resource: Resource::Repository, action: Pull }],
        };
        assert!(Policy::allows(
            &everywhere,
            &ProjectContext { name: "other", public: false, role: None },
            Resource::Repository,
            Pull
        ));
        assert!(!Policy::allows_system(&everywhere, Resource::User, List));
    }
}
