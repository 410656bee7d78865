//! The audit log: records written in the transaction of the change they record, chained by hash.
//!
//! A write that Harbor audits adds an [`AuditEvent`] to its transaction ([`WriteTx::audit`]);
//! [`WriteTx::commit`] inserts the records before it commits, so a change is never acknowledged
//! without its record, and a record never outlives a change that was rolled back. Who acted comes
//! from the task's [`Operator`] scope, which the HTTP layer opens per request; outside one (first
//! start, admin commands, housekeeping) the operator is `system`.
//!
//! Each record's hash covers its fields and the previous record's hash. `audit_chain` holds the
//! newest hash, so removing the newest records shows too; a purge keeps the links of what it
//! removed (`audit_purged`) except for a removed prefix, which the chain's anchor replaces.

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, RwLock};

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::listing::{Field, Kind, Listing, Source};
use crate::{Db, DbError, ListQuery, WriteTx, now_millis};

/// Harbor's event types (`model.EventTypes`), in Harbor's order: `<operation>_<resource type>`.
pub const EVENT_TYPES: &[&str] = &[
    "create_artifact",
    "delete_artifact",
    "pull_artifact",
    "create_project",
    "delete_project",
    "delete_repository",
    "login_user",
    "logout_user",
    "create_user",
    "delete_user",
    "update_user",
    "create_robot",
    "delete_robot",
    "update_configuration",
    "create_member",
    "delete_member",
    "update_member",
    "update_project",
];

/// Who acts, for the records of the writes made within an [`Operator::scope`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    pub username: String,
    /// The client's address.
    pub source: Option<String>,
}

tokio::task_local! {
    static OPERATOR: RefCell<Operator>;
}

impl Operator {
    /// Runs `f` with an operator that is anonymous until [`Operator::identify`] names it.
    pub async fn scope<F: Future>(source: Option<String>, f: F) -> F::Output {
        OPERATOR.scope(RefCell::new(Operator { username: "anonymous".into(), source }), f).await
    }

    /// Names the operator of the current scope, once the caller is authenticated.
    /// The request's span (when the API opened one) records the name too, for its log lines.
    pub fn identify(username: &str) {
        let _ = OPERATOR.try_with(|o| o.borrow_mut().username = username.to_string());
        tracing::Span::current().record("user", username);
    }

    /// The operator of the current scope; `system` outside any.
    pub fn current() -> Operator {
        OPERATOR
            .try_with(|o| o.borrow().clone())
            .unwrap_or_else(|_| Operator { username: "system".into(), source: None })
    }
}

/// One audited operation, as a write describes it.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    pub operation: &'static str,
    pub resource_type: &'static str,
    pub resource: String,
    pub project_id: Option<i64>,
    pub description: String,
    pub succeeded: bool,
}

impl AuditEvent {
    pub fn new(operation: &'static str, resource_type: &'static str, resource: impl Into<String>) -> AuditEvent {
        let resource = resource.into();
        let description = format!("{operation} {resource_type}: {resource}");
        AuditEvent { operation, resource_type, resource, project_id: None, description, succeeded: true }
    }

    pub fn in_project(mut self, project_id: i64) -> AuditEvent {
        self.project_id = Some(project_id);
        self
    }

    pub fn failed(mut self) -> AuditEvent {
        self.succeeded = false;
        self
    }

    pub fn described(mut self, description: impl Into<String>) -> AuditEvent {
        self.description = description.into();
        self
    }

    /// `create_artifact`, `login_user`, ...: the key of `disabled_audit_log_event_types`.
    pub fn event_type(&self) -> String {
        format!("{}_{}", self.operation, self.resource_type)
    }

    /// The record of this event by the current operator, now.
    pub fn by_current_operator(self) -> AuditRecord {
        let operator = Operator::current();
        AuditRecord {
            id: 0,
            op_time: now_millis(),
            username: operator.username,
            source: operator.source,
            event: self,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }
}

/// An audit record as stored (`id` and hashes are set when it is inserted).
#[derive(Clone, Debug)]
pub struct AuditRecord {
    pub id: i64,
    /// Milliseconds since the epoch.
    pub op_time: i64,
    pub username: String,
    pub source: Option<String>,
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// SHA-256 over the previous hash and every field, each length-prefixed so that no two
    /// different records encode alike.
    fn compute_hash(&self, prev_hash: &str) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        let result = if self.event.succeeded { "1" } else { "0" };
        let project = self.event.project_id.map(|p| p.to_string()).unwrap_or_default();
        let time = self.op_time.to_string();
        for field in [
            prev_hash,
            &time,
            &self.username,
            self.event.operation,
            self.event.resource_type,
            &self.event.resource,
            &project,
            &self.event.description,
            result,
            self.source.as_deref().unwrap_or(""),
        ] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// Pulls of one artifact by one operator from one address within a batch: one record, with the
/// count in its description (a manifest GET is the hottest request; a row for each would put
/// the writer in front of it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PullAudit {
    pub repository_id: i64,
    /// `<repository>:<tag>` or `<repository>@<digest>`, as pulled.
    pub resource: String,
    pub username: String,
    pub source: Option<String>,
}

/// Which audit records are kept.
#[derive(Clone, Default)]
pub struct AuditSettings {
    /// Harbor's `disabled_audit_log_event_types` (and `pull_audit_log_disable` as
    /// `pull_artifact`).
    pub disabled: Vec<String>,
    /// Where each record goes once its transaction has committed (Harbor's
    /// `audit_log_forward_endpoint`).
    pub forward: Option<Arc<dyn AuditSink>>,
    /// Harbor's `skip_audit_log_database`: records are forwarded only, not stored (nor chained).
    pub skip_database: bool,
}

/// Receives committed audit records. Called after the commit, on the writer's task: it must
/// not block.
pub trait AuditSink: Send + Sync {
    fn forward(&self, record: &AuditRecord);
}

/// The audit settings every writer of the process reads at its commit; replaced whole when the
/// system configuration changes them.
#[derive(Clone, Default)]
pub(crate) struct SharedSettings(Arc<RwLock<Option<Arc<AuditSettings>>>>);

impl SharedSettings {
    fn get(&self) -> Option<Arc<AuditSettings>> {
        // A writer that panicked left a whole value (it only ever swaps an Arc): go on.
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn set(&self, settings: AuditSettings) {
        *self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(settings));
    }
}

impl WriteTx<'_> {
    /// Records `event` by the current operator when this transaction commits.
    pub(crate) fn audit(&mut self, event: AuditEvent) {
        self.audit.push(event.by_current_operator());
    }

    /// Records an event whose operator was noted earlier (pulls, written in batches).
    pub(crate) fn audit_record(&mut self, record: AuditRecord) {
        self.audit.push(record);
    }

    /// Inserts the jobs the transaction's events trigger and its audit records, chained, then
    /// commits.
    pub(crate) async fn commit(mut self) -> Result<(), DbError> {
        let mut records = std::mem::take(&mut self.audit);
        // Before the audit settings filter: a job follows the change, not its record.
        for request in crate::jobs::triggered(&self.triggers, records.iter().map(|r| &r.event)) {
            crate::jobs::insert_job(&mut self.tx, &request, crate::jobs::TRIGGER_EVENT).await?;
        }
        let settings = self.settings.get();
        if let Some(settings) = &settings {
            records.retain(|r| !settings.disabled.contains(&r.event.event_type()));
        }
        let store = !settings.as_ref().is_some_and(|s| s.skip_database && s.forward.is_some());
        if store && !records.is_empty() {
            insert_chained(&mut self.tx, &mut records).await?;
        }
        self.tx.commit().await?;
        if let Some(sink) = settings.as_ref().and_then(|s| s.forward.as_ref()) {
            for r in &records {
                sink.forward(r);
            }
        }
        Ok(())
    }
}

/// Inserts `records` after the newest, holding the chain's row (a row lock on PostgreSQL, so
/// that concurrent writers on any replica chain one after the other).
async fn insert_chained(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    records: &mut [AuditRecord],
) -> Result<(), DbError> {
    let mut prev: String = sqlx::query_scalar("UPDATE audit_chain SET id = id WHERE id = 1 RETURNING last_hash")
        .fetch_one(&mut **tx)
        .await?;
    for r in records.iter_mut() {
        r.prev_hash = prev.clone();
        r.hash = r.compute_hash(&prev);
        let e = &r.event;
        r.id = sqlx::query_scalar(
            "INSERT INTO audit_log (op_time, username, operation, resource_type, resource, project_id, op_desc, \
             op_result, source, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(r.op_time)
        .bind(&r.username)
        .bind(e.operation)
        .bind(e.resource_type)
        .bind(&e.resource)
        .bind(e.project_id)
        .bind(&e.description)
        .bind(i64::from(e.succeeded))
        .bind(&r.source)
        .bind(&r.prev_hash)
        .bind(&r.hash)
        .fetch_one(&mut **tx)
        .await?;
        prev = r.hash.clone();
    }
    sqlx::query("UPDATE audit_chain SET last_hash = $1 WHERE id = 1").bind(&prev).execute(&mut **tx).await?;
    Ok(())
}

const AUDIT_COLUMNS: &str = "id, op_time, username, operation, resource_type, resource, project_id, op_desc, op_result, source, prev_hash, hash";

/// The keys of Harbor's audit-log `q` and `sort`.
const AUDIT_FIELDS: &[Field] = &[
    Field { key: "id", source: Source::Column("id"), kind: Kind::Int, sortable: true },
    Field { key: "username", source: Source::Column("username"), kind: Kind::Text, sortable: true },
    Field { key: "operation", source: Source::Column("operation"), kind: Kind::Text, sortable: true },
    Field { key: "resource_type", source: Source::Column("resource_type"), kind: Kind::Text, sortable: true },
    Field { key: "resource", source: Source::Column("resource"), kind: Kind::Text, sortable: true },
    Field { key: "project_id", source: Source::Column("project_id"), kind: Kind::Int, sortable: true },
    Field { key: "op_time", source: Source::Column("op_time"), kind: Kind::Time, sortable: true },
];

fn audit_row(r: &AnyRow) -> Result<AuditRecord, sqlx::Error> {
    Ok(AuditRecord {
        id: r.try_get(0)?,
        op_time: r.try_get(1)?,
        username: r.try_get(2)?,
        event: AuditEvent {
            operation: known(&r.try_get::<String, _>(3)?, OPERATIONS),
            resource_type: known(&r.try_get::<String, _>(4)?, RESOURCE_TYPES),
            resource: r.try_get(5)?,
            project_id: r.try_get(6)?,
            description: r.try_get(7)?,
            succeeded: r.try_get::<i64, _>(8)? != 0,
        },
        source: r.try_get(9)?,
        prev_hash: r.try_get(10)?,
        hash: r.try_get(11)?,
    })
}

const OPERATIONS: &[&str] = &["create", "delete", "pull", "update", "login", "logout"];
const RESOURCE_TYPES: &[&str] = &["artifact", "project", "repository", "user", "robot", "configuration", "member"];

/// The static name for a stored one; anything else reads as `other` (and fails verification,
/// which is right: no build of Berth wrote it).
fn known(value: &str, names: &[&'static str]) -> &'static str {
    names.iter().find(|n| **n == value).copied().unwrap_or("other")
}

/// What `verify_audit_chain` found.
#[derive(Debug, Default)]
pub struct ChainReport {
    pub records: u64,
    /// One line per break: the record altered, or where records were removed.
    pub problems: Vec<String>,
}

impl Db {
    /// Records an event that changes nothing else, in its own transaction, by `username` (a
    /// failed login is the attempted name's, as in Harbor: nobody is authenticated).
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn audit_only(&self, event: AuditEvent, username: &str) -> Result<(), DbError> {
        let mut record = event.by_current_operator();
        record.username = username.to_string();
        let mut w = self.begin_write().await?;
        w.audit_record(record);
        w.commit().await
    }

    /// Which records are kept and where they go, from the next commit on: set at start and
    /// whenever the system configuration changes them.
    pub fn configure_audit(&self, settings: AuditSettings) {
        self.audit_settings.set(settings);
    }

    /// Whether records of `event_type` are kept (so that a caller can skip preparing one).
    pub fn audits(&self, event_type: &str) -> bool {
        self.audit_settings.get().is_none_or(|s| !s.disabled.iter().any(|d| d == event_type))
    }

    /// A page of records, newest first unless `query` sorts otherwise; with `projects`, only
    /// records of those projects. Returns the page and the total.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn list_audit_logs(
        &self,
        query: &ListQuery,
        projects: Option<&[i64]>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<AuditRecord>, i64), DbError> {
        // Project ids are numbers we produced, never client text: an IN list is safe to splice.
        let from = match projects {
            None => "FROM audit_log WHERE 1 = 1".to_string(),
            Some([]) => "FROM audit_log WHERE 1 = 0".to_string(),
            Some(ids) => format!(
                "FROM audit_log WHERE project_id IN ({})",
                ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
            ),
        };
        let listing = Listing {
            columns: AUDIT_COLUMNS,
            from: &from,
            fixed: Vec::new(),
            fields: AUDIT_FIELDS,
            default_order: "op_time DESC, id DESC",
            tie_break: "id DESC",
        };
        let (rows, total) = self.list_page(&listing, query, limit, offset).await?;
        Ok((rows.iter().map(audit_row).collect::<Result<_, _>>()?, total))
    }

    /// Removes records older than `before` (milliseconds since the epoch), of `event_types`
    /// when given; returns how many (`dry_run`: how many would go).
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn purge_audit_logs(
        &self,
        before: i64,
        event_types: Option<&[String]>,
        dry_run: bool,
    ) -> Result<u64, DbError> {
        let mut w = self.begin_write().await?;
        let rows =
            sqlx::query("SELECT id, operation, resource_type, prev_hash, hash FROM audit_log WHERE op_time < $1")
                .bind(before)
                .fetch_all(&mut *w.tx)
                .await?;
        let mut doomed = Vec::new();
        for r in &rows {
            let event_type = format!("{}_{}", r.try_get::<String, _>(1)?, r.try_get::<String, _>(2)?);
            if event_types.is_none_or(|types| types.contains(&event_type)) {
                doomed.push((r.try_get::<i64, _>(0)?, r.try_get::<String, _>(3)?, r.try_get::<String, _>(4)?));
            }
        }
        if dry_run || doomed.is_empty() {
            return Ok(if dry_run { doomed.len() as u64 } else { 0 });
        }
        for (id, prev_hash, hash) in &doomed {
            sqlx::query("INSERT INTO audit_purged (id, prev_hash, hash) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(prev_hash)
                .bind(hash)
                .execute(&mut *w.tx)
                .await?;
            sqlx::query("DELETE FROM audit_log WHERE id = $1").bind(id).execute(&mut *w.tx).await?;
        }
        // A removed prefix needs no links: the oldest remaining record's predecessor becomes the
        // anchor.
        let oldest_kept: Option<i64> =
            sqlx::query_scalar("SELECT MIN(id) FROM audit_log").fetch_one(&mut *w.tx).await?;
        let (anchor, through) = match oldest_kept {
            Some(id) => {
                let prev: String = sqlx::query_scalar("SELECT prev_hash FROM audit_log WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut *w.tx)
                    .await?;
                (prev, id)
            }
            None => {
                let last: String =
                    sqlx::query_scalar("SELECT last_hash FROM audit_chain WHERE id = 1").fetch_one(&mut *w.tx).await?;
                (last, i64::MAX)
            }
        };
        sqlx::query("DELETE FROM audit_purged WHERE id < $1").bind(through).execute(&mut *w.tx).await?;
        sqlx::query("UPDATE audit_chain SET anchor_hash = $1 WHERE id = 1").bind(&anchor).execute(&mut *w.tx).await?;
        w.commit().await?;
        Ok(doomed.len() as u64)
    }

    /// Walks the chain from its anchor: every record's hash must match its fields and follow
    /// its predecessor's (a purged one's link standing in for it), and the newest must be the
    /// chain's head.
    #[tracing::instrument(level = "info", skip_all)]
    pub async fn verify_audit_chain(&self) -> Result<ChainReport, DbError> {
        let head =
            sqlx::query("SELECT last_hash, anchor_hash FROM audit_chain WHERE id = 1").fetch_one(&self.pool).await?;
        let (last_hash, anchor): (String, String) = (head.try_get(0)?, head.try_get(1)?);
        let purged: Vec<(i64, String, String)> =
            sqlx::query("SELECT id, prev_hash, hash FROM audit_purged ORDER BY id")
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<_, sqlx::Error>>()?;
        let mut purged = purged.into_iter().peekable();
        let mut report = ChainReport::default();
        let mut prev = anchor;
        let mut after_id = 0i64;
        loop {
            let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id > $1 ORDER BY id LIMIT 5000");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after_id).fetch_all(&self.pool).await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let r = audit_row(row)?;
                while let Some(link) = purged.next_if(|(id, _, _)| *id < r.id) {
                    follow_purged(link, &mut prev, &mut report);
                }
                report.records += 1;
                if r.prev_hash != prev {
                    report.problems.push(format!("records removed before record {}", r.id));
                }
                if r.compute_hash(&r.prev_hash) != r.hash {
                    report.problems.push(format!("record {} was altered", r.id));
                }
                prev = r.hash;
                after_id = r.id;
            }
        }
        for link in purged {
            follow_purged(link, &mut prev, &mut report);
        }
        if prev != last_hash {
            report.problems.push("the newest records were removed".to_string());
        }
        Ok(report)
    }
}

/// Steps the walk over a purged record's link (its id, its predecessor's hash, its hash).
fn follow_purged((id, prev_hash, hash): (i64, String, String), prev: &mut String, report: &mut ChainReport) {
    if prev_hash != *prev {
        report.problems.push(format!("records removed before the purged record {id}"));
    }
    *prev = hash;
}

/// A name for a record's resource, read in the writing transaction (`sql` selects one text
/// column by `$1`); the id itself when the row is gone.
pub(crate) async fn name_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    sql: &'static str,
    id: i64,
) -> Result<String, DbError> {
    let name: Option<String> = sqlx::query_scalar(sql).bind(id).fetch_optional(&mut **tx).await?;
    Ok(name.unwrap_or_else(|| id.to_string()))
}

pub(crate) const USER_NAME: &str = "SELECT username FROM users WHERE id = $1";
pub(crate) const PROJECT_NAME: &str = "SELECT name FROM projects WHERE id = $1";
pub(crate) const MEMBER_NAME: &str = "SELECT COALESCE(u.username, CAST(pm.entity_id AS TEXT)) FROM project_members pm \
     LEFT JOIN users u ON pm.entity_type = 'u' AND u.id = pm.entity_id WHERE pm.id = $1";
