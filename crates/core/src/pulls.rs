//! Pull statistics (Harbor's artifact `pull_time` and repository `pull_count`), gathered in
//! memory and written in batches.
//!
//! A pull is a read: writing a row for every manifest GET would put the database's write path
//! (one writer at a time on SQLite) in front of the hottest read. Counts are kept as deltas so
//! that any number of replicas add up; what has not been flushed when a process is killed is
//! lost, at most one flush interval of statistics and never anything a client was told was
//! stored.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use berth_db::audit::{Operator, PullAudit};
use berth_db::{Db, DbError, now_millis};

#[derive(Default)]
struct Pending {
    /// Manifest id to the time of its latest pull.
    manifests: HashMap<i64, i64>,
    /// Repository id to pulls not yet counted.
    repositories: HashMap<i64, i64>,
    /// Audit records to write: the latest time and the number of each.
    audits: HashMap<PullAudit, (i64, u64)>,
}

pub struct PullRecorder {
    db: Db,
    pending: Mutex<Pending>,
}

impl PullRecorder {
    pub fn new(db: Db) -> PullRecorder {
        PullRecorder { db, pending: Mutex::new(Pending::default()) }
    }

    /// Notes one pull of a manifest; cheap, never waits on the database.
    /// `resource` names what was pulled, for the audit log (`<repository>:<tag>` or `@<digest>`);
    /// it is not called when pulls are not audited.
    pub fn record(&self, repository_id: i64, manifest_id: i64, resource: impl FnOnce() -> String) {
        let now = now_millis();
        let audit = self.db.audits("pull_artifact").then(|| {
            let operator = Operator::current();
            PullAudit { repository_id, resource: resource(), username: operator.username, source: operator.source }
        });
        // A poisoned lock only means another thread panicked mid-insert; the maps stay usable.
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.manifests.insert(manifest_id, now);
        *p.repositories.entry(repository_id).or_insert(0) += 1;
        if let Some(audit) = audit {
            let entry = p.audits.entry(audit).or_insert((now, 0));
            entry.0 = now;
            entry.1 += 1;
        }
    }

    /// Writes what has been noted since the last flush. On failure the batch is put back, to
    /// be tried with the next one.
    pub async fn flush(&self) -> Result<(), DbError> {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if batch.manifests.is_empty() && batch.repositories.is_empty() {
            return Ok(());
        }
        let manifests: Vec<(i64, i64)> = batch.manifests.iter().map(|(k, v)| (*k, *v)).collect();
        let repositories: Vec<(i64, i64)> = batch.repositories.iter().map(|(k, v)| (*k, *v)).collect();
        let mut audits: Vec<(PullAudit, i64, u64)> =
            batch.audits.iter().map(|(a, (t, n))| (a.clone(), *t, *n)).collect();
        audits.sort_by_key(|(_, t, _)| *t);
        if let Err(e) = self.db.record_pulls(&manifests, &repositories, &audits).await {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for (m, t) in batch.manifests {
                let latest = p.manifests.entry(m).or_insert(t);
                *latest = (*latest).max(t);
            }
            for (r, n) in batch.repositories {
                *p.repositories.entry(r).or_insert(0) += n;
            }
            for (a, (t, n)) in batch.audits {
                let entry = p.audits.entry(a).or_insert((t, 0));
                entry.0 = entry.0.max(t);
                entry.1 += n;
            }
            return Err(e);
        }
        Ok(())
    }

    /// Flushes every `interval` until the task is dropped.
    pub async fn run(&self, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.flush().await {
                tracing::warn!(error = %e, "writing pull statistics failed; will retry");
            }
        }
    }
}
