//! Housekeeping, the `HOUSEKEEPING` job of the job service, fired by a standing schedule once
//! per cluster: purging upload sessions abandoned for longer than a configured age
//! (Distribution's upload purging), portal sessions that have ended, the history of ended jobs
//! beyond its count or age, and the job pools of replicas that stopped beating.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_jobs::{JobContext, JobError, Worker};

use crate::{Registry, RegistryError};

/// The job's kind.
pub const JOB_KIND: &str = "HOUSEKEEPING";

#[derive(Clone, Debug)]
pub struct MaintenanceSettings {
    /// Upload sessions untouched for longer are purged.
    pub upload_max_age: Duration,
    /// Ended jobs kept per kind (Harbor keeps 50 collections), but for the kinds named in
    /// `history_counts`.
    pub history_count: i64,
    pub history_counts: Vec<(String, i64)>,
    /// Ended jobs older than this are deleted whatever their count.
    pub history_max_age: Duration,
    /// A job pool whose heartbeat is older than this is gone.
    pub pool_silence: Duration,
}

impl Default for MaintenanceSettings {
    fn default() -> Self {
        MaintenanceSettings {
            upload_max_age: Duration::from_secs(7 * 24 * 3600),
            history_count: 50,
            history_counts: Vec::new(),
            history_max_age: Duration::from_secs(90 * 24 * 3600),
            pool_silence: Duration::from_secs(300),
        }
    }
}

impl Registry {
    /// Purges upload sessions untouched for `max_age`: their records, then their bytes.
    /// Returns how many.
    pub async fn purge_stale_uploads(&self, max_age: Duration) -> Result<usize, RegistryError> {
        let before = berth_db::now_millis() - max_age.as_millis() as i64;
        let mut purged = 0;
        loop {
            let stale = self.db().stale_uploads(before, 100).await?;
            if stale.is_empty() {
                return Ok(purged);
            }
            for (id, store_state) in stale {
                // Conditional: an append that touched it meanwhile keeps it.
                if self.db().delete_stale_upload(&id, before).await? {
                    self.store.upload_abort(&id, &store_state).await?;
                    purged += 1;
                }
            }
        }
    }
}

/// The `HOUSEKEEPING` job. Each step is idempotent, so a takeover simply does it again.
pub struct Housekeeping {
    registry: Arc<Registry>,
    settings: MaintenanceSettings,
}

impl Housekeeping {
    pub fn new(registry: Arc<Registry>, settings: MaintenanceSettings) -> Housekeeping {
        Housekeeping { registry, settings }
    }
}

#[async_trait]
impl Worker for Housekeeping {
    fn kind(&self) -> &'static str {
        JOB_KIND
    }

    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let db = self.registry.db();
        let retry = |e: RegistryError| JobError::Retry(e.to_string());
        let uploads = self.registry.purge_stale_uploads(self.settings.upload_max_age).await.map_err(retry)?;
        if uploads > 0 {
            tracing::info!(purged = uploads, "purged abandoned upload sessions");
        }
        let sessions = db.delete_expired_sessions().await?;
        let now = berth_db::now_millis();
        let ended_before = now - self.settings.history_max_age.as_millis() as i64;
        let mut jobs = 0;
        for kind in db.job_kinds().await? {
            let keep = self
                .settings
                .history_counts
                .iter()
                .find(|(k, _)| *k == kind)
                .map_or(self.settings.history_count, |(_, n)| *n);
            jobs += db.prune_jobs(&kind, keep.max(1), ended_before).await?;
        }
        let pools = db.remove_silent_job_pools(now - self.settings.pool_silence.as_millis() as i64).await?;
        job.log(&format!(
            "purged {uploads} abandoned upload sessions, {sessions} ended portal sessions, {jobs} ended jobs, \
             {pools} silent job pools"
        ))
        .await
    }
}
