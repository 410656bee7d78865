//! Housekeeping that one replica of a cluster does at a time, under a lease in the database:
//! purging upload sessions abandoned for longer than a configured age (Distribution's upload
//! purging) and portal sessions that have ended. When the holder dies, its lease expires and
//! another replica takes the work over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{Registry, RegistryError};

const LEASE: &str = "maintenance";

#[derive(Clone, Debug)]
pub struct MaintenanceSettings {
    /// How often the work runs.
    pub interval: Duration,
    /// Upload sessions untouched for longer are purged.
    pub upload_max_age: Duration,
    /// How long a lease lasts without renewal: the longest another replica waits after the
    /// holder dies. Renewed every third of it.
    pub lease_ttl: Duration,
}

impl Default for MaintenanceSettings {
    fn default() -> Self {
        MaintenanceSettings {
            interval: Duration::from_secs(3600),
            upload_max_age: Duration::from_secs(7 * 24 * 3600),
            lease_ttl: Duration::from_secs(30),
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

/// Holds the maintenance lease while it can and does the work when due, until dropped.
/// `holder` names this replica in the lease table (unique per process).
pub async fn run(registry: Arc<Registry>, settings: MaintenanceSettings, holder: String) {
    let ttl_ms = settings.lease_ttl.as_millis() as i64;
    let mut tick = tokio::time::interval((settings.lease_ttl / 3).max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut holding, mut last_run): (bool, Option<Instant>) = (false, None);
    loop {
        tick.tick().await;
        let held = match registry.db().hold_lease(LEASE, &holder, ttl_ms).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "could not renew the maintenance lease");
                false
            }
        };
        if held != holding {
            if held {
                tracing::info!(%holder, "holding the maintenance lease");
            } else {
                tracing::info!(%holder, "no longer holding the maintenance lease");
            }
            holding = held;
        }
        if !held || last_run.is_some_and(|t| t.elapsed() < settings.interval) {
            continue;
        }
        last_run = Some(Instant::now());
        match registry.purge_stale_uploads(settings.upload_max_age).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "purged abandoned upload sessions"),
            Err(e) => tracing::warn!(error = %e, "purging upload sessions failed"),
        }
        match registry.db().delete_expired_sessions().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "deleted ended portal sessions"),
            Err(e) => tracing::warn!(error = %e, "deleting ended sessions failed"),
        }
    }
}

/// Gives the lease up at shutdown, so that another replica takes over at once.
pub async fn release(registry: &Registry, holder: &str) {
    if let Err(e) = registry.db().release_lease(LEASE, holder).await {
        tracing::warn!(error = %e, "could not release the maintenance lease");
    }
}
