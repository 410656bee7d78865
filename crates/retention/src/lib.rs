//! Tag retention (Harbor's `/retentions`): a project's policy of rules that say what to keep,
//! run by hand or on its schedule as a `RETENTION` job, one execution at a time per project.
//! An execution makes one task per repository that a rule selects; each decides what to keep
//! (`evaluate`), writes the table of every candidate and its fate, and, unless it is a dry run,
//! removes the rest through the content door: tags, or artifacts with their accessories (GC
//! frees the bytes later). A dry run's table lists exactly what a run would remove then.

pub mod evaluate;
pub mod policy;

use std::sync::Arc;

use async_trait::async_trait;
use berth_auth::rbac::{self, Subject};
use berth_core::Registry;
use berth_core::projects::{ProjectError, ProjectRef, Projects};
use berth_db::jobs::{JobRow, status};
pub use berth_db::retention::{JOB_KIND, RetentionPolicyRow, RetentionTaskRow};
use berth_db::{ArtifactScope, Db, ListQuery, now_millis};
use berth_jobs::{JobContext, JobError, Worker};

use crate::evaluate::{Artifact, Decision, Verdict};
use crate::policy::{PolicyDoc, RuleDoc, ScopeDoc, TriggerDoc};

/// Attempts an execution gets (it is safe to run again from the start).
const ATTEMPTS: i64 = 3;
/// The most artifacts of one repository an execution considers.
const MOST_ARTIFACTS: i64 = 1_000_000;

/// The policies and executions, as Harbor's API asks for them.
#[derive(Clone)]
pub struct Retention {
    db: Db,
    projects: Projects,
}

fn not_found(id: i64) -> ProjectError {
    ProjectError::NotFound(format!("retention policy {id}"))
}

fn valid_cron(cron: &str) -> Result<(), String> {
    berth_jobs::schedule::Cron::parse(cron).map(|_| ()).map_err(|e| e.0)
}

/// A stored policy as Harbor shows it.
pub fn policy_doc(row: &RetentionPolicyRow) -> PolicyDoc {
    let rules: Vec<RuleDoc> = serde_json::from_str(&row.rules).unwrap_or_default();
    PolicyDoc {
        id: Some(row.id),
        algorithm: Some(row.algorithm.clone()),
        rules: Some(rules),
        trigger: Some(TriggerDoc {
            kind: Some(row.trigger_kind.clone()),
            settings: Some([("cron".to_string(), serde_json::Value::from(row.cron.clone()))].into()),
            references: Some(serde_json::json!({})),
        }),
        scope: Some(ScopeDoc { level: Some("project".into()), reference: Some(row.project_id) }),
        per_tag: Some(row.per_tag),
    }
}

impl Retention {
    pub fn new(registry: &Registry) -> Retention {
        Retention { db: registry.db().clone(), projects: Projects::new(registry) }
    }

    /// The policy `id`, if the caller may do `action` on its project's retention.
    async fn policy(
        &self,
        subject: &Subject,
        id: i64,
        action: rbac::Action,
    ) -> Result<RetentionPolicyRow, ProjectError> {
        let row = self.db.retention_policy(id).await?.ok_or_else(|| not_found(id))?;
        let project = ProjectRef::Id(row.project_id);
        self.projects.authorized(subject, &project, rbac::Resource::TagRetention, action).await?;
        Ok(row)
    }

    pub async fn create(&self, subject: &Subject, doc: &PolicyDoc) -> Result<i64, ProjectError> {
        let checked = policy::check(doc, valid_cron).map_err(ProjectError::Invalid)?;
        let project = ProjectRef::Id(checked.project_id);
        self.projects.authorized(subject, &project, rbac::Resource::TagRetention, rbac::Action::Create).await?;
        Ok(self.db.create_retention_policy(&row(0, &checked)?).await?)
    }

    pub async fn get(&self, subject: &Subject, id: i64) -> Result<PolicyDoc, ProjectError> {
        Ok(policy_doc(&self.policy(subject, id, rbac::Action::Read).await?))
    }

    /// Replaces the policy's rules, trigger and mode; its project cannot change.
    pub async fn update(&self, subject: &Subject, id: i64, doc: &PolicyDoc) -> Result<(), ProjectError> {
        let current = self.policy(subject, id, rbac::Action::Update).await?;
        let checked = policy::check(doc, valid_cron).map_err(ProjectError::Invalid)?;
        if checked.project_id != current.project_id {
            return Err(ProjectError::Invalid("a policy's project cannot change".into()));
        }
        if !self.db.update_retention_policy(&row(id, &checked)?).await? {
            return Err(not_found(id));
        }
        Ok(())
    }

    pub async fn delete(&self, subject: &Subject, id: i64) -> Result<(), ProjectError> {
        self.policy(subject, id, rbac::Action::Delete).await?;
        if !self.db.delete_retention_policy(id).await? {
            return Err(not_found(id));
        }
        Ok(())
    }

    /// Queues an execution (the job's id); 409 while another of the policy is queued or running.
    pub async fn execute(&self, subject: &Subject, id: i64, dry_run: bool) -> Result<i64, ProjectError> {
        self.policy(subject, id, rbac::Action::Operate).await?;
        if let Some(running) = self.db.retention_in_progress(id).await? {
            return Err(ProjectError::Conflict(format!(
                "execution {running} of retention policy {id} has not ended; one runs at a time"
            )));
        }
        let parameters = berth_db::retention::execution_parameters(id, dry_run);
        Ok(self.db.enqueue_job(JOB_KIND, &parameters, ATTEMPTS).await?)
    }

    pub async fn executions(
        &self,
        subject: &Subject,
        id: i64,
        page: i64,
        size: i64,
    ) -> Result<(Vec<Execution>, i64), ProjectError> {
        self.policy(subject, id, rbac::Action::List).await?;
        let (jobs, total) = self.db.retention_executions(id, size, (page - 1) * size).await?;
        Ok((jobs.iter().map(|j| Execution::of(id, j)).collect(), total))
    }

    /// The execution `eid` of policy `id`.
    async fn execution(&self, id: i64, eid: i64) -> Result<JobRow, ProjectError> {
        let job = self.db.job(eid).await?.filter(|j| {
            j.kind == JOB_KIND
                && (j.parameters == berth_db::retention::execution_parameters(id, false)
                    || j.parameters == berth_db::retention::execution_parameters(id, true))
        });
        job.ok_or_else(|| ProjectError::NotFound(format!("execution {eid} of retention policy {id}")))
    }

    /// Harbor's `PATCH` of an execution: `stop` is the only action.
    pub async fn act(&self, subject: &Subject, id: i64, eid: i64, action: &str) -> Result<(), ProjectError> {
        if action != "stop" {
            return Err(ProjectError::Invalid(format!("action must be stop, not {action:?}")));
        }
        self.policy(subject, id, rbac::Action::Operate).await?;
        self.execution(id, eid).await?;
        self.db.request_job_stop(eid).await?;
        Ok(())
    }

    pub async fn tasks(
        &self,
        subject: &Subject,
        (id, eid): (i64, i64),
        page: i64,
        size: i64,
    ) -> Result<(Vec<RetentionTaskRow>, i64), ProjectError> {
        self.policy(subject, id, rbac::Action::List).await?;
        self.execution(id, eid).await?;
        Ok(self.db.retention_tasks(eid, size, (page - 1) * size).await?)
    }

    /// A task's table.
    pub async fn task_log(&self, subject: &Subject, (id, eid, tid): (i64, i64, i64)) -> Result<String, ProjectError> {
        self.policy(subject, id, rbac::Action::Read).await?;
        self.execution(id, eid).await?;
        let task = self.db.retention_task(eid, tid).await?;
        Ok(task.ok_or_else(|| ProjectError::NotFound(format!("task {tid} of execution {eid}")))?.log)
    }
}

fn row(id: i64, checked: &policy::Checked) -> Result<RetentionPolicyRow, ProjectError> {
    Ok(RetentionPolicyRow {
        id,
        project_id: checked.project_id,
        algorithm: "or".into(),
        rules: serde_json::to_string(&checked.rules).map_err(|e| ProjectError::Internal(e.to_string()))?,
        trigger_kind: "Schedule".into(),
        cron: checked.cron.clone(),
        per_tag: checked.per_tag,
        created_at: 0,
        updated_at: 0,
    })
}

/// Harbor's `RetentionExecution`, from its job.
pub struct Execution {
    pub id: i64,
    pub policy_id: i64,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub status: String,
    pub trigger: String,
    pub dry_run: bool,
}

impl Execution {
    fn of(policy_id: i64, j: &JobRow) -> Execution {
        Execution {
            id: j.id,
            policy_id,
            start_time: j.created_at,
            end_time: j.finished_at,
            status: j.status.clone(),
            trigger: j.trigger.clone(),
            dry_run: j.parameters == berth_db::retention::execution_parameters(policy_id, true),
        }
    }
}

/// Runs executions (`RETENTION` jobs).
pub struct RetentionWorker {
    registry: Arc<Registry>,
    projects: Projects,
}

impl RetentionWorker {
    pub fn new(registry: Arc<Registry>) -> RetentionWorker {
        let projects = Projects::new(&registry);
        RetentionWorker { registry, projects }
    }

    /// One repository's task: decides, writes the table, and removes unless `dry_run`.
    /// Whether everything it had to remove was removed.
    async fn run_repository(
        &self,
        job: &JobContext,
        repository: &berth_db::RepositoryRow,
        rules: &[&policy::Rule],
        per_tag: bool,
        dry_run: bool,
    ) -> Result<bool, JobError> {
        let db = self.registry.db();
        let task = db.start_retention_task(job.id, &repository.name).await?;
        let artifacts = self.artifacts(repository).await?;
        let decisions = evaluate::decide(rules, &artifacts, per_tag, now_millis());
        let mut failures = Vec::new();
        if !dry_run {
            failures = self.remove(repository, &decisions).await;
        }
        let retained = decisions.iter().filter(|d| d.verdict.retained()).count() as i64;
        let log = table(&decisions, dry_run, &failures);
        let ok = failures.is_empty();
        let task_status = if ok { status::SUCCESS } else { status::ERROR };
        db.finish_retention_task(task, task_status, (decisions.len() as i64, retained), &log).await?;
        Ok(ok)
    }

    /// The repository's artifacts as retention sees them: Harbor's listing (no accessories,
    /// no untagged children of an index), with their tags and which of those are immutable.
    async fn artifacts(&self, repository: &berth_db::RepositoryRow) -> Result<Vec<Artifact>, JobError> {
        let db = self.registry.db();
        let query = ListQuery::default();
        let (rows, _) = db.list_artifacts(repository.id, ArtifactScope::TopLevel, &query, MOST_ARTIFACTS, 0).await?;
        let tags = db.tags_of(&rows.iter().map(|r| r.id).collect::<Vec<_>>()).await?;
        let mut artifacts: Vec<Artifact> = rows
            .iter()
            .map(|r| Artifact {
                digest: r.digest.clone(),
                kind: berth_core::artifacts::harbor_type(r.artifact_type.as_deref(), &r.media_type).to_string(),
                tags: tags.iter().filter(|t| t.manifest_id == r.id).map(|t| (t.name.clone(), t.updated_at)).collect(),
                pushed: r.created_at,
                pulled: r.pull_time,
                immutable: Vec::new(),
            })
            .collect();
        let named: Vec<(&str, Vec<&str>)> = artifacts
            .iter()
            .map(|a| (repository.name.as_str(), a.tags.iter().map(|(t, _)| t.as_str()).collect()))
            .collect();
        let flags = self.projects.immutable_tags(&named).await.map_err(|e| JobError::Retry(e.to_string()))?;
        for (a, flags) in artifacts.iter_mut().zip(flags) {
            a.immutable = flags;
        }
        Ok(artifacts)
    }

    /// Removes what `decisions` remove, through the content door; what failed, and why.
    async fn remove(&self, repository: &berth_db::RepositoryRow, decisions: &[Decision]) -> Vec<(String, String)> {
        let content = self.registry.content();
        let going: std::collections::BTreeSet<&str> =
            decisions.iter().filter(|d| d.verdict == Verdict::RemoveArtifact).map(|d| d.digest.as_str()).collect();
        let mut failures = Vec::new();
        for d in decisions {
            let result = match d.verdict {
                Verdict::RemoveArtifact => content.delete_artifact(repository.id, &repository.name, &d.digest).await,
                // A tag of an artifact that goes whole goes with it.
                Verdict::RemoveTag if !going.contains(d.digest.as_str()) => {
                    let tag = d.tags.first().map(String::as_str).unwrap_or_default();
                    content.delete_tag(repository.id, &repository.name, &d.digest, tag).await
                }
                _ => continue,
            };
            if let Err(e) = result {
                failures.push((d.digest.clone(), e.to_string()));
            }
        }
        failures
    }
}

/// The task's table, as Harbor logs it: one line per candidate and what became of it.
fn table(decisions: &[Decision], dry_run: bool, failures: &[(String, String)]) -> String {
    let mut out = String::new();
    if dry_run {
        out.push_str("Dry run: nothing was removed; DEL marks what a run would remove.\n");
    }
    out.push_str("| Digest | Tag | Kind | PushedTime | PulledTime | Retention |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for d in decisions {
        let fate = match d.verdict {
            Verdict::Retain => "RETAIN",
            Verdict::Immutable => "IMMUTABLE",
            Verdict::RemoveTag | Verdict::RemoveArtifact => "DEL",
        };
        let time = |t: Option<i64>| t.map(berth_core::time::rfc3339_millis).unwrap_or_default();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {fate} |\n",
            d.digest,
            d.tags.join(","),
            d.kind,
            time(Some(d.pushed)),
            time(d.pulled)
        ));
    }
    for (digest, why) in failures {
        out.push_str(&format!("not removed: {digest}: {why}\n"));
    }
    out
}

#[derive(serde::Deserialize)]
struct Parameters {
    policy_id: i64,
    #[serde(default)]
    dry_run: bool,
}

#[async_trait]
impl Worker for RetentionWorker {
    fn kind(&self) -> &'static str {
        JOB_KIND
    }

    fn changes_content(&self) -> bool {
        true
    }

    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let params: Parameters = serde_json::from_value(job.parameters.clone())
            .map_err(|e| JobError::Fatal(format!("invalid parameters: {e}")))?;
        let db = self.registry.db();
        let Some(policy) = db.retention_policy(params.policy_id).await? else {
            // Gone with its project (a cascade): its schedule must not fire again.
            db.delete_vendor_schedule(JOB_KIND, params.policy_id).await?;
            return Err(JobError::Fatal(format!("retention policy {} no longer exists", params.policy_id)));
        };
        if !db.claim_retention(policy.id, job.id).await? {
            return Err(JobError::Fatal(format!(
                "another execution of retention policy {} is running; one runs at a time",
                policy.id
            )));
        }
        let result = self.run_policy(job, &policy, params.dry_run).await;
        db.release_retention(policy.id, job.id).await?;
        result
    }
}

impl RetentionWorker {
    async fn run_policy(&self, job: &JobContext, policy: &RetentionPolicyRow, dry_run: bool) -> Result<(), JobError> {
        let rules = policy::stored_rules(&policy.rules).map_err(JobError::Fatal)?;
        let db = self.registry.db();
        let (repositories, _) =
            db.list_repositories(Some(policy.project_id), None, &ListQuery::default(), MOST_ARTIFACTS, 0).await?;
        let mut failed = 0;
        for repository in &repositories {
            if job.stop_requested() {
                return Err(JobError::Stopped);
            }
            let in_project = repository.name.split_once('/').map_or(repository.name.as_str(), |(_, r)| r);
            let selecting: Vec<&policy::Rule> =
                rules.iter().filter(|r| !r.disabled && r.selects_repository(in_project)).collect();
            if selecting.is_empty() {
                continue;
            }
            if !self.run_repository(job, repository, &selecting, policy.per_tag, dry_run).await? {
                failed += 1;
            }
        }
        job.log(&format!("{} repositories, {failed} with removals that failed\n", repositories.len())).await?;
        if failed > 0 {
            return Err(JobError::Fatal(format!("{failed} repositories kept what should have been removed")));
        }
        Ok(())
    }
}
