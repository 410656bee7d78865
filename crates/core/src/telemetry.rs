//! The metrics computed when scraped: Harbor's exporter metrics (from the per-project counters
//! the database keeps, one row per project), component health, and the state of the database
//! pool, storage volume and upload sessions.

use berth_metrics::Encoder;

use crate::{Registry, RegistryError};

fn bool_label(b: bool) -> String {
    b.to_string()
}

impl Registry {
    pub async fn encode_scraped_metrics(&self, enc: &mut Encoder) -> Result<(), RegistryError> {
        let (projects, health, capacity, sessions) = tokio::join!(
            self.db().project_stats(),
            self.health(),
            self.storage_capacity(),
            self.db().open_upload_sessions()
        );
        let projects = projects?;

        let public = projects.iter().filter(|p| p.public).count() as i64;
        let total = [(vec![bool_label(true)], public), (vec![bool_label(false)], projects.len() as i64 - public)];
        enc.gauge_family("harbor_project_total", "Total projects number", &["public"], &total);
        let repos: Vec<_> =
            projects.iter().map(|p| (vec![p.name.clone(), bool_label(p.public)], p.repositories)).collect();
        enc.gauge_family(
            "harbor_project_repo_total",
            "Total project repos number",
            &["project_name", "public"],
            &repos,
        );
        let members: Vec<_> = projects.iter().map(|p| (vec![p.name.clone()], p.members)).collect();
        enc.gauge_family(
            "harbor_project_member_total",
            "Total members number of a project",
            &["project_name"],
            &members,
        );
        let usage: Vec<_> = projects.iter().map(|p| (vec![p.name.clone()], p.bytes)).collect();
        enc.gauge_family(
            "harbor_project_quota_usage_byte",
            "The used resource of a project",
            &["project_name"],
            &usage,
        );
        let quotas: Vec<_> = projects.iter().map(|p| (vec![p.name.clone()], p.quota)).collect();
        enc.gauge_family("harbor_project_quota_byte", "The quota of a project", &["project_name"], &quotas);
        let pulls: Vec<_> = projects.iter().map(|p| (vec![p.name.clone()], p.pulls)).collect();
        enc.gauge_family("harbor_artifact_pulled", "The pull number of an artifact", &["project_name"], &pulls);
        let artifacts: Vec<_> = projects
            .iter()
            .flat_map(|p| {
                p.artifacts.iter().map(|(kind, n)| (vec![kind.clone(), p.name.clone(), bool_label(p.public)], *n))
            })
            .collect();
        enc.gauge_family(
            "harbor_project_artifact_total",
            "Total project artifacts number",
            &["artifact_type", "project_name", "public"],
            &artifacts,
        );

        // Harbor's component names: storage is what its `registry` component stands for.
        let mut up = vec![(vec!["core".to_string()], 1i64)];
        for c in &health {
            let name = if c.name == "storage" { "registry" } else { c.name };
            up.push((vec![name.to_string()], i64::from(c.healthy())));
        }
        enc.gauge_family("harbor_up", "Running status of Harbor component", &["component"], &up);
        let healthy = crate::health::ready(&health);
        enc.gauge_family("harbor_health", "Running status of Harbor", &[], &[(vec![], i64::from(healthy))]);

        let pool = self.db().pool_state();
        let pool_rows = [
            (vec!["open".to_string()], i64::from(pool.open)),
            (vec!["idle".to_string()], i64::from(pool.idle)),
            (vec!["max".to_string()], i64::from(pool.max)),
        ];
        enc.gauge_family("berth_db_pool_connections", "Database pool connections by state", &["state"], &pool_rows);
        if let Ok(Some((total, free))) = capacity {
            let rows = [(vec!["total".to_string()], total), (vec!["free".to_string()], free)];
            enc.gauge_family("berth_storage_volume_bytes", "Size and free space of the blob volume", &["kind"], &rows);
        }
        if let Ok(n) = sessions {
            enc.gauge_family("berth_upload_sessions", "Upload sessions open on all replicas", &[], &[(vec![], n)]);
        }
        self.encode_job_metrics(enc).await?;
        self.encode_scan_metrics(enc).await?;
        Ok(())
    }

    /// The scanner's gauges, for the whole cluster: each vulnerability feed's import time and
    /// size (the database's age, which Trivy's adapter reports as
    /// `vulnerability-database-updated-at`), and the scan reports per status.
    async fn encode_scan_metrics(&self, enc: &mut Encoder) -> Result<(), RegistryError> {
        let feeds = self.db().vuln_feeds().await?;
        let imported: Vec<(Vec<String>, i64)> =
            feeds.iter().map(|f| (vec![f.name.clone()], f.imported_at / 1000)).collect();
        enc.gauge_family(
            "berth_vulndb_feed_imported_timestamp_seconds",
            "When each vulnerability feed was last imported",
            &["feed"],
            &imported,
        );
        let sizes: Vec<(Vec<String>, i64)> = feeds.iter().map(|f| (vec![f.name.clone()], f.advisories)).collect();
        enc.gauge_family("berth_vulndb_feed_advisories", "Advisories each vulnerability feed holds", &["feed"], &sizes);
        let reports: Vec<(Vec<String>, i64)> =
            self.db().scan_report_counts().await?.into_iter().map(|(status, n)| (vec![status], n)).collect();
        enc.gauge_family("berth_scan_reports", "Scan reports by status", &["status"], &reports);
        Ok(())
    }

    /// Harbor's job service gauges, for the whole cluster (every replica answers the same):
    /// pending jobs and how long the oldest has waited per kind, standing schedules, and the
    /// jobs running per kind and pool.
    async fn encode_job_metrics(&self, enc: &mut Encoder) -> Result<(), RegistryError> {
        let (queues, schedules, running) =
            tokio::join!(self.db().job_queues(), self.db().job_schedules(), self.db().running_jobs());
        let (queues, schedules, running) = (queues?, schedules?, running?);
        let now = crate::time::now_millis();
        let sizes: Vec<_> = queues.iter().map(|q| (vec![q.kind.clone()], q.pending)).collect();
        enc.gauge_family("harbor_task_queue_size", "Total number of tasks", &["type"], &sizes);
        let latency: Vec<_> = queues
            .iter()
            .map(|q| (vec![q.kind.clone()], q.oldest_due.map_or(0, |due| ((now - due) / 1000).max(0))))
            .collect();
        enc.gauge_family("harbor_task_queue_latency", "how much time the task need to wait", &["type"], &latency);
        let scheduled = schedules.iter().filter(|s| !s.paused).count() as i64;
        enc.gauge_family("harbor_task_scheduled_total", "total number of scheduled job", &[], &[(vec![], scheduled)]);
        let mut concurrency: std::collections::BTreeMap<(String, String), i64> = Default::default();
        for job in &running {
            *concurrency.entry((job.kind.clone(), berth_jobs::pool_of(&job.runner).to_string())).or_default() += 1;
        }
        let concurrency: Vec<_> = concurrency.into_iter().map(|((kind, pool), n)| (vec![kind, pool], n)).collect();
        enc.gauge_family(
            "harbor_task_concurrency",
            "Total number of concurrency on a pool",
            &["type", "pool"],
            &concurrency,
        );
        Ok(())
    }
}
