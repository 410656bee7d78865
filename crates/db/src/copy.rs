//! Copying every row of one database into another (`berth admin migrate-data`): embedded
//! SQLite to an external PostgreSQL, ids kept, so that an installation can grow without
//! starting over.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Db, DbError, Dialect};

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Text,
    Float,
}

/// The tables that are copied, parents before children, with their columns. Upload sessions,
/// portal sessions and leases are not: they belong to the running installation.
const TABLES: &[(&str, &[(&str, Kind)])] = {
    use Kind::{Float as F, Int as I, Text as T};
    &[
        (
            "users",
            &[
                ("id", I),
                ("username", T),
                ("email", T),
                ("realname", T),
                ("comment", T),
                ("password_hash", T),
                ("sysadmin", I),
                ("created_at", I),
                ("updated_at", I),
            ],
        ),
        ("projects", &[("id", I), ("name", T), ("owner_id", I), ("created_at", I), ("updated_at", I)]),
        ("project_metadata", &[("project_id", I), ("name", T), ("value", T)]),
        (
            "project_quotas",
            &[
                ("id", I),
                ("project_id", I),
                ("hard_storage", I),
                ("created_at", I),
                ("updated_at", I),
                ("hard_tags_per_repository", I),
                ("hard_artifacts_per_repository", I),
            ],
        ),
        (
            "project_members",
            &[
                ("id", I),
                ("project_id", I),
                ("entity_type", T),
                ("entity_id", I),
                ("role", I),
                ("created_at", I),
                ("updated_at", I),
            ],
        ),
        (
            "robots",
            &[
                ("id", I),
                ("name", T),
                ("description", T),
                ("level", T),
                ("project_id", I),
                ("secret_hash", T),
                ("disabled", I),
                ("duration", I),
                ("expires_at", I),
                ("creator_type", T),
                ("creator_ref", T),
                ("created_at", I),
                ("updated_at", I),
            ],
        ),
        ("robot_permissions", &[("robot_id", I), ("kind", T), ("namespace", T), ("resource", T), ("action", T)]),
        ("settings", &[("name", T), ("value", T)]),
        (
            "job_schedules",
            &[
                ("id", I),
                ("job_type", T),
                ("vendor_id", I),
                ("cron_type", T),
                ("cron", T),
                ("parameters", T),
                ("paused", I),
                ("last_fired", I),
                ("created_at", I),
                ("updated_at", I),
            ],
        ),
        (
            "repositories",
            &[
                ("id", I),
                ("name", T),
                ("created_at", I),
                ("updated_at", I),
                ("project_id", I),
                ("description", T),
                ("pull_count", I),
            ],
        ),
        ("blobs", &[("digest", T), ("size", I), ("created_at", I)]),
        ("repository_blobs", &[("repository_id", I), ("digest", T), ("created_at", I)]),
        (
            "manifests",
            &[
                ("id", I),
                ("repository_id", I),
                ("digest", T),
                ("media_type", T),
                ("size", I),
                ("artifact_type", T),
                ("subject_digest", T),
                ("annotations", T),
                ("created_at", I),
                ("pull_time", I),
                ("accessory_of", T),
                ("accessory_type", T),
                ("extra_attrs", T),
                ("child_descriptors", T),
                ("icon", T),
            ],
        ),
        ("manifest_children", &[("manifest_id", I), ("digest", T), ("kind", T)]),
        ("tags", &[("id", I), ("repository_id", I), ("name", T), ("manifest_id", I), ("updated_at", I)]),
        (
            "labels",
            &[
                ("id", I),
                ("name", T),
                ("description", T),
                ("color", T),
                ("scope", T),
                ("project_id", I),
                ("created_at", I),
                ("updated_at", I),
            ],
        ),
        ("artifact_labels", &[("manifest_id", I), ("label_id", I), ("created_at", I)]),
        (
            "immutable_tag_rules",
            &[
                ("id", I),
                ("project_id", I),
                ("priority", I),
                ("disabled", I),
                ("repository_decoration", T),
                ("repository_pattern", T),
                ("tag_decoration", T),
                ("tag_pattern", T),
                ("created_at", I),
            ],
        ),
        // The execution running is not (jobs are not copied).
        (
            "retention_policies",
            &[
                ("id", I),
                ("project_id", I),
                ("algorithm", T),
                ("rules", T),
                ("trigger_kind", T),
                ("cron", T),
                ("per_tag", I),
                ("created_at", I),
                ("updated_at", I),
            ],
        ),
        (
            "audit_log",
            &[
                ("id", I),
                ("op_time", I),
                ("username", T),
                ("operation", T),
                ("resource_type", T),
                ("resource", T),
                ("project_id", I),
                ("op_desc", T),
                ("op_result", I),
                ("source", T),
                ("prev_hash", T),
                ("hash", T),
            ],
        ),
        ("audit_purged", &[("id", I), ("prev_hash", T), ("hash", T)]),
        // The chain's head: the target's own (made by its migration) is replaced.
        ("audit_chain", &[("id", I), ("last_hash", T), ("anchor_hash", T)]),
        // The vulnerability database: an air-gapped installation may have no other copy.
        ("vuln_feeds", &[("name", T), ("source", T), ("advisories", I), ("imported_at", I)]),
        ("vuln_advisories", &[("id", I), ("feed", T), ("advisory_id", T), ("body", T)]),
        ("vuln_packages", &[("family", T), ("package", T), ("advisory", I)]),
        // Reports, but not their jobs (which are not copied) nor the layers analysed (a cache).
        (
            "scan_reports",
            &[
                ("id", I),
                ("uuid", T),
                ("digest", T),
                ("registration", T),
                ("mime_type", T),
                ("status", T),
                ("job_id", I),
                ("severity", T),
                ("summary", T),
                ("report", T),
                ("findings", T),
                ("start_time", I),
                ("end_time", I),
            ],
        ),
        (
            "scan_vulnerabilities",
            &[
                ("id", I),
                ("report_id", I),
                ("cve_id", T),
                ("package", T),
                ("version", T),
                ("fixed_version", T),
                ("severity", T),
                ("severity_rank", I),
                ("cvss_v3", F),
                ("description", T),
                ("links", T),
            ],
        ),
        (
            "cve_allowlists",
            &[("id", I), ("project_id", I), ("expires_at", I), ("items", T), ("created_at", I), ("updated_at", I)],
        ),
    ]
};

/// Tables left out of a copy, on purpose.
/// The project counters are not copied either: the target's triggers count the copied rows; nor
/// jobs, their history or their queues' pauses (a copy is made with the registry stopped; what
/// was queued is queued again by what queues it), nor the pools of replicas that ran them.
pub const NOT_COPIED: &[&str] = &[
    "schema_migrations",
    "uploads",
    "sessions",
    "project_stats",
    "project_artifact_stats",
    "project_content",
    "jobs",
    "retention_tasks",
    "job_queues",
    "job_pools",
    "blob_pins",
    "blob_tombstones",
    "released_manifests",
    "scan_layers",
];

/// Tables whose `id` is generated, whose sequences must follow the copied ids.
const GENERATED_IDS: &[&str] = &[
    "users",
    "projects",
    "project_members",
    "robots",
    "repositories",
    "manifests",
    "tags",
    "labels",
    "immutable_tag_rules",
    "project_quotas",
    "retention_policies",
    "audit_log",
    "job_schedules",
    "vuln_advisories",
    "scan_reports",
    "scan_vulnerabilities",
    "cve_allowlists",
];

const BATCH: i64 = 500;

/// Rows per table in both databases after a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: &'static str,
    pub source: i64,
    pub target: i64,
}

impl Db {
    /// The names of the tables this build copies, for checking that none is forgotten.
    pub fn copied_tables() -> Vec<&'static str> {
        TABLES.iter().map(|(t, _)| *t).collect()
    }

    /// Copies every row of the tables in [`TABLES`] into `target`, which must hold no user yet
    /// (a fresh database; its schema is made when it is opened), in one transaction there.
    /// Returns the row counts of both sides, which are equal when this returns `Ok`.
    pub async fn copy_into(&self, target: &Db) -> Result<Vec<TableCount>, DbError> {
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&target.pool).await?;
        if users > 0 {
            return Err(DbError::Conflict("a target database with users (it must be fresh)".into()));
        }
        let mut w = target.begin_write().await?;
        sqlx::query("DELETE FROM audit_chain").execute(&mut *w.tx).await?;
        for (table, columns) in TABLES {
            let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
            let select =
                format!("SELECT {} FROM {table} ORDER BY {} LIMIT $1 OFFSET $2", names.join(", "), names.join(", "));
            let insert =
                format!("INSERT INTO {table} ({}) VALUES ({})", names.join(", "), crate::placeholders(1, names.len()));
            let mut offset = 0;
            loop {
                let rows: Vec<AnyRow> = sqlx::query(sqlx::AssertSqlSafe(select.clone()))
                    .bind(BATCH)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await?;
                for row in &rows {
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(insert.clone()));
                    for (i, (_, kind)) in columns.iter().enumerate() {
                        q = match kind {
                            Kind::Int => q.bind(row.try_get::<Option<i64>, _>(i)?),
                            Kind::Text => q.bind(row.try_get::<Option<String>, _>(i)?),
                            Kind::Float => q.bind(row.try_get::<Option<f64>, _>(i)?),
                        };
                    }
                    q.execute(&mut *w.tx).await?;
                }
                if (rows.len() as i64) < BATCH {
                    break;
                }
                offset += BATCH;
            }
        }
        if target.dialect == Dialect::Postgres {
            for table in GENERATED_IDS {
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *w.tx).await?;
            }
        }
        w.commit().await?;
        let mut counts = Vec::new();
        for (table, _) in TABLES {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let source: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).fetch_one(&self.pool).await?;
            let copied: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&target.pool).await?;
            counts.push(TableCount { table, source, target: copied });
        }
        if let Some(c) = counts.iter().find(|c| c.source != c.target) {
            return Err(DbError::Conflict(format!(
                "a difference after the copy: {} has {} rows here and {} there",
                c.table, c.source, c.target
            )));
        }
        Ok(counts)
    }

    /// The digest and size of everything storage holds for the metadata: blobs, and the
    /// manifests' own bytes. For copying and checking the bytes.
    pub async fn all_stored_content(&self) -> Result<Vec<(String, i64)>, DbError> {
        let rows = sqlx::query("SELECT digest, size FROM blobs UNION SELECT digest, size FROM manifests ORDER BY 1")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_, sqlx::Error>>()?)
    }

    /// The names of the tables in this database (for tests that check [`TABLES`] is whole).
    pub async fn table_names(&self) -> Result<Vec<String>, DbError> {
        let sql = match self.dialect {
            Dialect::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            }
            Dialect::Postgres => {
                "SELECT CAST(tablename AS TEXT) FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
            }
        };
        Ok(sqlx::query_scalar(sql).fetch_all(&self.pool).await?)
    }
}
