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
        // Berth has no quotas yet: every project's is Harbor's default, -1 (unlimited).
        let quotas: Vec<_> = projects.iter().map(|p| (vec![p.name.clone()], -1i64)).collect();
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
        Ok(())
    }
}
