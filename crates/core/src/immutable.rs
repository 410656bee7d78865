//! Tag immutability (Harbor's immutable tag rules, harbor.md 2.7): which tags may not be moved
//! to another manifest nor deleted, and the [`ContentPolicy`] that holds them at the door.
//!
//! A rule selects repositories and tags by doublestar patterns (`*` within a path segment,
//! `**` across segments, `?`, `[...]`, `{a,b}`), each `matches` or `excludes`; a tag is
//! immutable when an enabled rule of its project selects both its repository (named without
//! the project, as Harbor matches it) and it. Beyond Harbor, pushing the manifest a tag already
//! names to that tag again is not a change, and is let through.

use berth_auth::rbac::{self, Subject};
use berth_db::ListQuery;
pub use berth_db::immutable::ImmutableRuleRow;
use globset::{GlobBuilder, GlobMatcher};

use crate::Refusal;
use crate::content::{ContentChange, ContentPolicy, PolicyRefusal};
use crate::projects::{ProjectError, ProjectRef, Projects};

/// The decorations Harbor's selectors take.
const TAG_DECORATIONS: [&str; 2] = ["matches", "excludes"];
const REPOSITORY_DECORATIONS: [&str; 2] = ["repoMatches", "repoExcludes"];

/// A doublestar pattern (`*` stops at `/`, as bmatcuk/doublestar's does): Harbor's selectors,
/// here and in tag retention.
pub fn glob(pattern: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("invalid pattern {pattern:?}: {e}"))
}

/// A rule, its patterns compiled.
pub struct ImmutableRule {
    pub row: ImmutableRuleRow,
    repository: GlobMatcher,
    tag: GlobMatcher,
}

impl ImmutableRule {
    /// Checks a rule's decorations and patterns, and compiles them.
    pub fn compile(row: ImmutableRuleRow) -> Result<ImmutableRule, String> {
        if !REPOSITORY_DECORATIONS.contains(&row.repository_decoration.as_str()) {
            return Err(format!(
                "repository decoration {:?} is not one of repoMatches, repoExcludes",
                row.repository_decoration
            ));
        }
        if !TAG_DECORATIONS.contains(&row.tag_decoration.as_str()) {
            return Err(format!("tag decoration {:?} is not one of matches, excludes", row.tag_decoration));
        }
        for pattern in [&row.repository_pattern, &row.tag_pattern] {
            if pattern.is_empty() || pattern.chars().count() > 256 {
                return Err("a pattern is 1 to 256 characters".into());
            }
        }
        Ok(ImmutableRule { repository: glob(&row.repository_pattern)?, tag: glob(&row.tag_pattern)?, row })
    }

    /// Whether the rule holds `tag` of `repository` (the full name, project first).
    pub fn holds(&self, repository: &str, tag: &str) -> bool {
        let in_project = repository.split_once('/').map_or(repository, |(_, rest)| rest);
        let repository_selected =
            self.repository.is_match(in_project) == (self.row.repository_decoration == "repoMatches");
        repository_selected && self.tag.is_match(tag) == (self.row.tag_decoration == "matches")
    }
}

/// The enabled rules of a repository's project. A stored rule was checked when it was
/// written; one that no longer compiles is an error rather than a rule skipped (an immutable
/// tag must not move because a pattern went bad).
pub(crate) struct RuleSet(Vec<ImmutableRule>);

impl RuleSet {
    pub(crate) async fn of(db: &berth_db::Db, repository: &str) -> Result<RuleSet, String> {
        let rows = db.immutable_rules_for(repository).await.map_err(|e| e.to_string())?;
        Ok(RuleSet(rows.into_iter().map(ImmutableRule::compile).collect::<Result<_, _>>()?))
    }

    pub(crate) fn immutable(&self, repository: &str, tag: &str) -> bool {
        self.0.iter().any(|r| r.holds(repository, tag))
    }
}

/// The policy at the content door: an immutable tag is not moved, deleted, or deleted with
/// its artifact or repository.
pub struct Immutability {
    db: berth_db::Db,
}

impl Immutability {
    pub fn new(db: berth_db::Db) -> Immutability {
        Immutability { db }
    }

    /// The tag `tag` of `repository` names a manifest other than `digest`.
    async fn names_another(&self, repository: &str, tag: &str, digest: &str) -> Result<bool, PolicyRefusal> {
        let Some(repository_id) = self.db.repository_id(repository).await.map_err(internal)? else {
            return Ok(false);
        };
        let current = self.db.manifest_by_tag(repository_id, tag).await.map_err(internal)?;
        Ok(current.is_some_and(|m| m.digest != digest))
    }
}

fn internal(e: impl std::fmt::Display) -> PolicyRefusal {
    PolicyRefusal { refusal: Refusal::Internal, message: format!("checking tag immutability: {e}") }
}

/// Harbor's 412 (its messages say "configured as immutable").
fn refused(repository: &str, tag: &str, what: &str) -> PolicyRefusal {
    PolicyRefusal {
        refusal: Refusal::Precondition,
        message: format!("the tag {repository}:{tag} is configured as immutable, cannot be {what}"),
    }
}

#[async_trait::async_trait]
impl ContentPolicy for Immutability {
    async fn check(&self, change: &ContentChange) -> Result<(), PolicyRefusal> {
        // Most pushes by digest (an index's children, signatures) touch no tag: no rules to read.
        if change.tags().is_empty() && !matches!(change, ContentChange::DeleteRepository { .. }) {
            return Ok(());
        }
        let repository = change.repository();
        let rules = RuleSet::of(&self.db, repository).await.map_err(internal)?;
        if rules.0.is_empty() {
            return Ok(());
        }
        // The tags a change points at a manifest (moving them if they named another).
        let (digest, pointed): (&str, Vec<&String>) = match change {
            ContentChange::Push { digest, tags, .. } => (digest, tags.iter().collect()),
            ContentChange::Copy { digest, tag, .. } => (digest, tag.iter().collect()),
            ContentChange::DeleteTag { tag, .. } => {
                return if rules.immutable(repository, tag) {
                    Err(refused(repository, tag, "deleted"))
                } else {
                    Ok(())
                };
            }
            ContentChange::DeleteArtifact { tags, .. } => {
                return match tags.iter().find(|t| rules.immutable(repository, t)) {
                    Some(tag) => Err(refused(repository, tag, "deleted")),
                    None => Ok(()),
                };
            }
            ContentChange::DeleteRepository { .. } => return self.check_repository(&rules, repository).await,
            ContentChange::AddTag { .. } => return Ok(()),
        };
        for tag in pointed.into_iter().filter(|t| rules.immutable(repository, t)) {
            if self.names_another(repository, tag, digest).await? {
                return Err(refused(repository, tag, "updated"));
            }
        }
        Ok(())
    }
}

impl Immutability {
    /// A repository is deleted with its tags: none may be immutable.
    async fn check_repository(&self, rules: &RuleSet, repository: &str) -> Result<(), PolicyRefusal> {
        let Some(repository_id) = self.db.repository_id(repository).await.map_err(internal)? else {
            return Ok(());
        };
        let mut last: Option<String> = None;
        loop {
            let page = self.db.tags(repository_id, 1000, last.as_deref()).await.map_err(internal)?;
            if let Some(tag) = page.iter().find(|t| rules.immutable(repository, t)) {
                return Err(refused(repository, tag, "deleted"));
            }
            match page.last() {
                Some(t) if page.len() == 1000 => last = Some(t.clone()),
                _ => return Ok(()),
            }
        }
    }
}

/// `rule` checked and compiled, as rule `id` of project `project_id` (whatever the request
/// said of those).
fn checked(rule: ImmutableRuleRow, project_id: i64, id: i64) -> Result<ImmutableRuleRow, ProjectError> {
    ImmutableRule::compile(ImmutableRuleRow { id, project_id, ..rule }).map(|r| r.row).map_err(ProjectError::Invalid)
}

impl Projects {
    async fn immutable_access(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        action: rbac::Action,
    ) -> Result<i64, ProjectError> {
        Ok(self.authorized(subject, project, rbac::Resource::ImmutableTag, action).await?.id)
    }

    pub async fn immutable_rules(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        query: &ListQuery,
        page: i64,
        size: i64,
    ) -> Result<(Vec<ImmutableRuleRow>, i64), ProjectError> {
        let project_id = self.immutable_access(subject, project, rbac::Action::List).await?;
        Ok(self.db.list_immutable_rules(project_id, query, size, (page - 1) * size).await?)
    }

    /// Rule `id` of the project (for an update that names only some keys).
    pub async fn immutable_rule(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        id: i64,
    ) -> Result<ImmutableRuleRow, ProjectError> {
        let project_id = self.immutable_access(subject, project, rbac::Action::Update).await?;
        self.db
            .immutable_rule(project_id, id)
            .await?
            .ok_or_else(|| ProjectError::NotFound(format!("immutable tag rule {id}")))
    }

    pub async fn create_immutable_rule(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        rule: ImmutableRuleRow,
    ) -> Result<i64, ProjectError> {
        let project_id = self.immutable_access(subject, project, rbac::Action::Create).await?;
        Ok(self.db.create_immutable_rule(&checked(rule, project_id, 0)?).await?)
    }

    pub async fn update_immutable_rule(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        id: i64,
        rule: ImmutableRuleRow,
    ) -> Result<(), ProjectError> {
        let project_id = self.immutable_access(subject, project, rbac::Action::Update).await?;
        if self.db.update_immutable_rule(&checked(rule, project_id, id)?).await? {
            Ok(())
        } else {
            Err(ProjectError::NotFound(format!("immutable tag rule {id}")))
        }
    }

    pub async fn delete_immutable_rule(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        id: i64,
    ) -> Result<(), ProjectError> {
        let project_id = self.immutable_access(subject, project, rbac::Action::Delete).await?;
        if self.db.delete_immutable_rule(project_id, id).await? {
            Ok(())
        } else {
            Err(ProjectError::NotFound(format!("immutable tag rule {id}")))
        }
    }

    /// For each (repository, tags) of `artifacts`, which of its tags are immutable (Harbor's
    /// `with_immutable_status`): each project's rules read once, however many artifacts.
    pub async fn immutable_tags(&self, artifacts: &[(&str, Vec<&str>)]) -> Result<Vec<Vec<bool>>, ProjectError> {
        let mut rules: std::collections::HashMap<&str, RuleSet> = std::collections::HashMap::new();
        let mut flags = Vec::with_capacity(artifacts.len());
        for (repository, tags) in artifacts {
            let project = repository.split('/').next().unwrap_or(repository);
            if !rules.contains_key(project) {
                let set = RuleSet::of(&self.db, repository).await.map_err(ProjectError::Internal)?;
                rules.insert(project, set);
            }
            let set = &rules[project];
            flags.push(tags.iter().map(|t| set.immutable(repository, t)).collect());
        }
        Ok(flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(repo: (&str, &str), tag: (&str, &str)) -> ImmutableRule {
        ImmutableRule::compile(ImmutableRuleRow {
            id: 1,
            project_id: 1,
            priority: 0,
            disabled: false,
            repository_decoration: repo.0.into(),
            repository_pattern: repo.1.into(),
            tag_decoration: tag.0.into(),
            tag_pattern: tag.1.into(),
        })
        .unwrap()
    }

    #[test]
    fn doublestar_selectors_as_harbor_matches_them() {
        let r = rule(("repoMatches", "**"), ("matches", "release-*"));
        assert!(r.holds("library/app", "release-1.0"));
        assert!(r.holds("library/team/app", "release-2"));
        assert!(!r.holds("library/app", "latest"));
        // The repository is matched without its project; `*` stops at a slash.
        let r = rule(("repoMatches", "app*"), ("matches", "**"));
        assert!(r.holds("library/app", "x") && r.holds("library/apple", "x"));
        assert!(!r.holds("library/team/app", "x") && !r.holds("app/other", "x"));
        let r = rule(("repoMatches", "{web,api}/**"), ("excludes", "dev-*"));
        assert!(r.holds("p/web/frontend", "1.0"));
        assert!(!r.holds("p/web/frontend", "dev-1"));
        assert!(!r.holds("p/db/main", "1.0"));
        let r = rule(("repoExcludes", "scratch/**"), ("matches", "v?.?"));
        assert!(r.holds("p/app", "v1.2") && !r.holds("p/scratch/x", "v1.2") && !r.holds("p/app", "v10.2"));
    }

    #[test]
    fn bad_rules_are_refused() {
        let row = |repo_dec: &str, pattern: &str, tag_dec: &str| ImmutableRuleRow {
            id: 0,
            project_id: 1,
            priority: 0,
            disabled: false,
            repository_decoration: repo_dec.into(),
            repository_pattern: pattern.into(),
            tag_decoration: tag_dec.into(),
            tag_pattern: "**".into(),
        };
        assert!(ImmutableRule::compile(row("matches", "**", "matches")).is_err());
        assert!(ImmutableRule::compile(row("repoMatches", "**", "repoMatches")).is_err());
        assert!(ImmutableRule::compile(row("repoMatches", "", "matches")).is_err());
        assert!(ImmutableRule::compile(row("repoMatches", "[a-", "matches")).is_err());
        assert!(ImmutableRule::compile(row("repoMatches", "a/**", "excludes")).is_ok());
    }
}
