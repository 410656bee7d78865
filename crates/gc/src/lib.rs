//! Garbage collection: Harbor's `GARBAGE_COLLECTION` job, run by the job service.
//!
//! Mark from the database, sweep storage, while pushes and pulls go on:
//!
//! 1. Tombstones a dead collection left are finished first (their bytes deleted, then buried).
//! 2. With `delete_untagged`, untagged artifacts older than the time window are deleted through
//!    the content door (with their accessories), as a user's delete would.
//! 3. Links of repositories to blobs that no manifest of theirs references, older than the
//!    window, are removed (quota usage falls with them).
//! 4. Storage is walked shard by shard (`sha256/00` … `sha512/ff`); what the walk finds older
//!    than the window is condemned in batches when nothing links, names, references or pins it
//!    (`berth_db::gc` says why that is safe against a concurrent push), its bytes are deleted
//!    by `workers` tasks at once, and its tombstones go.
//! 5. Blob rows left without links whose bytes the walk did not find go too.
//!
//! Every phase records how far it got in the job's progress, so a collection killed at any
//! moment is taken over (or retried) and resumes there; each step is safe to repeat.

pub mod collections;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use berth_core::Registry;
use berth_jobs::{JobContext, JobError, Worker};
use berth_oci::{Algorithm, Digest};
use berth_store::{BlobPrefix, StoredBlob};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

/// Harbor's job name.
pub const JOB_KIND: &str = "GARBAGE_COLLECTION";
/// Harbor's `GC_TIME_WINDOW_HOURS` default.
pub const DEFAULT_TIME_WINDOW_HOURS: i64 = 2;
/// Digests condemned (and rows read) per transaction. Larger batches cost fewer commits but
/// hold SQLite's single writer longer (pushes wait behind it): at 100,000 blobs, 1,000 a
/// batch took twice as long as 5,000, and a batch of 5,000 holds the writer about 0.1 s.
const BATCH: usize = 5000;
const ALGORITHMS: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];
/// How often a collection records its progress by default (each record is a write): a
/// takeover repeats at most this much work.
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);
/// Shards listed at once (object stores answer a listing in tens of milliseconds).
const PARALLEL_WALKS: usize = 8;
/// Shards of the sweep: 256 per algorithm.
pub const SHARDS: usize = 256 * ALGORITHMS.len();

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidParameters(pub String);

/// What a collection is asked to do (Harbor's job parameters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcParams {
    /// Delete untagged artifacts first (Harbor's default when omitted: true).
    pub delete_untagged: bool,
    /// Count and report; delete nothing.
    pub dry_run: bool,
    /// Deletions from storage at once, 1 to 10.
    pub workers: usize,
    /// Content younger than this many hours is never collected (Harbor's `time_window`).
    pub time_window: i64,
}

impl GcParams {
    /// From Harbor's parameters object; `time_window` (hours) when the body gives none.
    /// Unknown keys are refused rather than ignored.
    pub fn from_json(v: &serde_json::Value, default_window: i64) -> Result<GcParams, InvalidParameters> {
        let invalid = |m: String| InvalidParameters(m);
        let empty = serde_json::Map::new();
        let map = match v {
            serde_json::Value::Object(m) => m,
            serde_json::Value::Null => &empty,
            _ => return Err(invalid("parameters must be an object".into())),
        };
        for key in map.keys() {
            if !["delete_untagged", "dry_run", "workers", "time_window"].contains(&key.as_str()) {
                return Err(invalid(format!(
                    "unknown GC parameter {key:?} (known: delete_untagged, dry_run, workers, time_window)"
                )));
            }
        }
        let flag = |key: &str, default: bool| match map.get(key) {
            None | Some(serde_json::Value::Null) => Ok(default),
            Some(serde_json::Value::Bool(b)) => Ok(*b),
            Some(serde_json::Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
            Some(_) => Err(invalid(format!("{key} must be true or false"))),
        };
        let number = |key: &str| match map.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Number(n)) => n.as_i64().map(Some).ok_or(()),
            Some(serde_json::Value::String(s)) => s.trim().parse().map(Some).map_err(|_| ()),
            Some(_) => Err(()),
        };
        let workers = number("workers").map_err(|()| invalid("workers must be a number".into()))?.unwrap_or(1);
        if !(1..=10).contains(&workers) {
            return Err(invalid("Workers must be greater than 0 and less than or equal to 10".into()));
        }
        let time_window = number("time_window")
            .map_err(|()| invalid("time_window must be a number of hours".into()))?
            .unwrap_or(default_window);
        if time_window < 0 {
            return Err(invalid("time_window must be 0 or more hours".into()));
        }
        Ok(GcParams {
            delete_untagged: flag("delete_untagged", true)?,
            dry_run: flag("dry_run", false)?,
            workers: workers as usize,
            time_window,
        })
    }
}

/// What a collection did (or, dry, would do): Harbor's `freed_space`, `purged_blobs`,
/// `purged_manifests`, and ours.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    pub freed_space: u64,
    pub purged_blobs: u64,
    pub purged_manifests: u64,
    /// Untagged artifacts deleted.
    pub purged_artifacts: u64,
    /// Links of repositories to blobs nothing of theirs referenced.
    pub purged_links: u64,
    /// Shards of storage swept, of [`SHARDS`].
    pub shards_swept: usize,
}

/// How far a collection got, kept in the job's progress.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    untagged_after: i64,
    untagged_done: bool,
    links_after: Option<(i64, String)>,
    links_done: bool,
    rows_after: String,
    rows_done: bool,
    report: GcReport,
}

/// The job's worker.
pub struct GarbageCollector {
    registry: Arc<Registry>,
    default_window: i64,
    checkpoint_every: std::time::Duration,
}

impl GarbageCollector {
    /// `default_window`: hours, for jobs whose parameters name none (`gc.time_window_hours`).
    pub fn new(registry: Arc<Registry>, default_window: i64) -> GarbageCollector {
        GarbageCollector { registry, default_window, checkpoint_every: CHECKPOINT_EVERY }
    }

    /// Records progress this often instead of every [`CHECKPOINT_EVERY`].
    pub fn with_checkpoint_every(mut self, every: std::time::Duration) -> GarbageCollector {
        self.checkpoint_every = every;
        self
    }
}

#[async_trait]
impl Worker for GarbageCollector {
    fn kind(&self) -> &'static str {
        JOB_KIND
    }

    fn changes_content(&self) -> bool {
        true
    }

    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let params = GcParams::from_json(&job.parameters, self.default_window)
            .map_err(|e| JobError::Fatal(format!("invalid parameters: {e}")))?;
        let mut progress: Progress = serde_json::from_value(job.progress.clone()).unwrap_or_default();
        let run = Collection {
            registry: &self.registry,
            job,
            params: &params,
            last_checkpoint: std::sync::Mutex::new(std::time::Instant::now()),
            checkpoint_every: self.checkpoint_every,
            in_flight: std::sync::Mutex::new(None),
            unburied: std::sync::Mutex::new(Vec::new()),
            times: std::sync::Mutex::new(PhaseTimes::default()),
        };
        let resumed = progress.report.shards_swept > 0 || progress.untagged_done || progress.links_done;
        job.log(&format!(
            "{} garbage collection{}: delete_untagged={} workers={} time_window={}h",
            if params.dry_run { "dry-run" } else { "start" },
            if resumed { " (resumed)" } else { "" },
            params.delete_untagged,
            params.workers,
            params.time_window
        ))
        .await?;
        run.all(&mut progress).await?;
        let r = &progress.report;
        job.log(&format!(
            "{} {} blobs and {} manifests{}, {} untagged artifacts, {} unreferenced links; {} bytes freed",
            if params.dry_run { "would delete" } else { "deleted" },
            r.purged_blobs,
            r.purged_manifests,
            if params.dry_run { "" } else { " from storage" },
            r.purged_artifacts,
            r.purged_links,
            r.freed_space
        ))
        .await?;
        Ok(())
    }
}

/// The report a collection job recorded (while it runs, so far).
pub fn report_of(progress: &str) -> Option<GcReport> {
    serde_json::from_str::<Progress>(progress).ok().map(|p| p.report)
}

/// What shard `index` holds that was written before `before` (what a collection may take).
async fn walk_shard(
    store: &dyn berth_store::BlobStore,
    index: usize,
    before: std::time::SystemTime,
) -> Result<Vec<StoredBlob>, JobError> {
    let algorithm = ALGORITHMS[index / 256];
    let shard = format!("{:02x}", index % 256);
    let Some(prefix) = BlobPrefix::new(algorithm, &shard) else { return Ok(Vec::new()) };
    let mut walk = store.walk_blobs(&prefix);
    let mut found = Vec::new();
    while let Some(blob) = walk.next().await {
        let blob = blob.map_err(|e| JobError::Retry(format!("walking {}/{shard}: {e}", algorithm.as_str())))?;
        // Bytes written since the cutoff may be a push whose row is not written yet.
        if blob.modified < before {
            found.push(blob);
        }
    }
    Ok(found)
}

/// Deletes the bytes of `digests`, `workers` at a time (or in bulk, where the store can).
async fn delete_bytes(store: &dyn berth_store::BlobStore, digests: &[&str], workers: usize) -> Result<(), JobError> {
    let parsed: Vec<Digest> = digests.iter().filter_map(|d| Digest::parse(d).ok()).collect();
    store
        .delete_many(&parsed, workers)
        .await
        .map_err(|e| JobError::Retry(format!("deleting {} blobs: {e}", parsed.len())))
}

/// Adds what was (or would be) deleted to the report; sizes as storage gave them.
fn count(deleted: &[berth_db::gc::Condemned], sizes: &HashMap<&str, u64>, report: &mut GcReport) {
    for c in deleted {
        // Bytes a deleted manifest had, and no blob row names: a manifest's.
        if c.manifest && c.size == 0 {
            report.purged_manifests += 1;
        } else {
            report.purged_blobs += 1;
        }
        report.freed_space += sizes.get(c.digest.as_str()).copied().unwrap_or(c.size.max(0) as u64);
    }
}

impl GcReport {
    fn add(&mut self, other: &GcReport) {
        self.freed_space += other.freed_space;
        self.purged_blobs += other.purged_blobs;
        self.purged_manifests += other.purged_manifests;
        self.purged_artifacts += other.purged_artifacts;
        self.purged_links += other.purged_links;
    }
}

/// Where a phase's time went, for its log. Deleting and burying run beside condemning, so
/// the parts may add up to more than the whole.
#[derive(Default)]
struct PhaseTimes {
    listing: std::time::Duration,
    condemning: std::time::Duration,
    deleting: std::time::Duration,
    burying: std::time::Duration,
}

impl PhaseTimes {
    fn describe(&self) -> String {
        format!(
            "waiting for listings {} ms, condemning {} ms, deleting bytes {} ms, burying {} ms",
            self.listing.as_millis(),
            self.condemning.as_millis(),
            self.deleting.as_millis(),
            self.burying.as_millis()
        )
    }
}

/// A batch whose bytes were deleted: its share of the report, its digests (to bury), and
/// how long the deletion took.
type Disposal = Result<(GcReport, Vec<String>, std::time::Duration), JobError>;

struct Collection<'a> {
    registry: &'a Registry,
    job: &'a JobContext,
    params: &'a GcParams,
    last_checkpoint: std::sync::Mutex<std::time::Instant>,
    checkpoint_every: std::time::Duration,
    /// The condemned batch whose bytes are being deleted (then buried) on a task of its own
    /// while the next batch is condemned: the store's deletes and the database's writer work
    /// at once. At most one batch is in flight; a collection that dies meanwhile leaves
    /// tombstones, which the next one finishes first.
    in_flight: std::sync::Mutex<Option<tokio::task::JoinHandle<Disposal>>>,
    /// Digests whose bytes are gone and whose tombstones are not: the next condemning
    /// transaction buries them (a commit of their own saved), the end of a phase at the latest.
    unburied: std::sync::Mutex<Vec<String>>,
    times: std::sync::Mutex<PhaseTimes>,
}

impl Collection<'_> {
    fn db(&self) -> &berth_db::Db {
        self.registry.db()
    }

    /// The time before which content may be collected (ms).
    fn cutoff(&self) -> i64 {
        berth_db::now_millis() - self.params.time_window * 3_600_000
    }

    fn checkpoint_due(&self) -> bool {
        self.last_checkpoint.lock().map(|t| t.elapsed() >= self.checkpoint_every).unwrap_or(true)
    }

    /// Records the progress at most every `checkpoint_every` (`force`: now), and stops
    /// here when a stop was asked for.
    async fn checkpoint(&self, progress: &mut Progress, force: bool) -> Result<(), JobError> {
        let stop = self.job.stop_requested();
        if stop {
            // What was condemned is deleted and buried before it stops: a writer waiting on a
            // tombstone must not wait for the next collection.
            self.settle_and_bury(&mut progress.report).await?;
        }
        if force || stop || self.checkpoint_due() {
            let value = serde_json::to_value(&*progress).map_err(|e| JobError::Fatal(e.to_string()))?;
            self.job.save_progress(&value).await?;
            if let Ok(mut t) = self.last_checkpoint.lock() {
                *t = std::time::Instant::now();
            }
        }
        if stop {
            self.job.log("stopped on request; the next collection starts afresh").await?;
            return Err(JobError::Stopped);
        }
        Ok(())
    }

    async fn all(&self, progress: &mut Progress) -> Result<(), JobError> {
        if !self.params.dry_run {
            self.finish_tombstones(&mut progress.report).await?;
        }
        if self.params.delete_untagged && !progress.untagged_done {
            self.delete_untagged(progress).await?;
        }
        if !progress.links_done {
            let t = std::time::Instant::now();
            self.unlink_stale(progress).await?;
            self.job
                .log(&format!(
                    "{} unreferenced links in {} ms: {}",
                    progress.report.purged_links,
                    t.elapsed().as_millis(),
                    self.take_times().describe()
                ))
                .await?;
        }
        if progress.report.shards_swept < SHARDS {
            let t = std::time::Instant::now();
            self.sweep(progress).await?;
            self.job
                .log(&format!("swept storage in {} ms: {}", t.elapsed().as_millis(), self.take_times().describe()))
                .await?;
        }
        if !progress.rows_done {
            self.rows_without_bytes(progress).await?;
        }
        if !self.params.dry_run {
            self.db().forget_held_released_manifests().await?;
        }
        Ok(())
    }

    /// Deletions a collection that died left half done: their rows are gone, their bytes
    /// may not be; nothing may be written under those digests until they are buried.
    async fn finish_tombstones(&self, report: &mut GcReport) -> Result<(), JobError> {
        loop {
            let doomed = self.db().tombstones(BATCH as i64).await?;
            if doomed.is_empty() {
                return Ok(());
            }
            let names: Vec<&str> = doomed.iter().map(String::as_str).collect();
            delete_bytes(self.registry.store().as_ref(), &names, self.params.workers).await?;
            self.db().bury(&names).await?;
            report.purged_blobs += doomed.len() as u64;
            self.job.log(&format!("finished {} deletions a stopped collection had begun", doomed.len())).await?;
        }
    }

    async fn delete_untagged(&self, progress: &mut Progress) -> Result<(), JobError> {
        let before = self.cutoff();
        loop {
            let page = self.db().untagged_artifacts(before, progress.untagged_after, 200).await?;
            let Some(last) = page.last() else { break };
            progress.untagged_after = last.3;
            for (repo_id, repo, digest, _) in &page {
                if self.params.dry_run {
                    progress.report.purged_artifacts += 1;
                    continue;
                }
                // Through the door, so that policies, audit, caches and subscribers see it.
                match self.registry.content().delete_artifact(*repo_id, repo, digest).await {
                    Ok(Some(())) => progress.report.purged_artifacts += 1,
                    Ok(None) => {}
                    Err(berth_core::RegistryError::Refused { message, .. }) => {
                        self.job.log(&format!("kept {repo}@{digest}: {message}")).await?;
                    }
                    Err(e) => return Err(JobError::Retry(e.to_string())),
                }
            }
            self.checkpoint(progress, false).await?;
        }
        progress.untagged_done = true;
        self.job
            .log(&format!(
                "{} {} untagged artifacts",
                if self.params.dry_run { "would delete" } else { "deleted" },
                progress.report.purged_artifacts
            ))
            .await?;
        self.checkpoint(progress, true).await
    }

    /// Removes stale links, and condemns (then deletes) the digests they alone held.
    async fn unlink_stale(&self, progress: &mut Progress) -> Result<(), JobError> {
        let before = self.cutoff();
        loop {
            let links = self.db().stale_links(before, progress.links_after.as_ref(), BATCH as i64).await?;
            let Some(last) = links.last() else { break };
            progress.links_after = Some(last.clone());
            if self.params.dry_run {
                progress.report.purged_links += links.len() as u64;
            } else {
                let t = std::time::Instant::now();
                let buried = self.take_unburied();
                let buried: Vec<&str> = buried.iter().map(String::as_str).collect();
                let (removed, condemned) = self.db().unlink_stale(self.job.id, &links, before, &buried).await?;
                self.time(|times| times.condemning += t.elapsed());
                progress.report.purged_links += removed;
                self.dispose(condemned, &HashMap::new(), &mut progress.report).await?;
            }
            self.checkpoint(progress, false).await?;
        }
        self.settle_and_bury(&mut progress.report).await?;
        progress.links_done = true;
        self.checkpoint(progress, true).await
    }

    /// Sweeps storage from the first shard not swept yet: [`PARALLEL_WALKS`] shards listed at
    /// once (in order), their candidates gathered across shards into batches of [`BATCH`],
    /// and the progress recorded only up to a shard whose candidates were all dealt with.
    async fn sweep(&self, progress: &mut Progress) -> Result<(), JobError> {
        let before = self.cutoff();
        let before_time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(before.max(0) as u64);
        let store = self.registry.store().clone();
        let mut walks = std::pin::pin!(
            futures_util::stream::iter(progress.report.shards_swept..SHARDS)
                .map(|index| {
                    let store = store.clone();
                    async move { (index, walk_shard(store.as_ref(), index, before_time).await) }
                })
                .buffered(PARALLEL_WALKS)
        );
        let mut pending: Vec<StoredBlob> = Vec::new();
        loop {
            let waited = std::time::Instant::now();
            let Some((index, found)) = walks.next().await else { break };
            self.time(|times| times.listing += waited.elapsed());
            pending.extend(found?);
            let last = index + 1 == SHARDS;
            if pending.len() >= BATCH || last || self.checkpoint_due() {
                for batch in pending.chunks(BATCH) {
                    self.collect(batch, before, &mut progress.report).await?;
                }
                pending.clear();
                progress.report.shards_swept = index + 1;
                if last {
                    self.settle_and_bury(&mut progress.report).await?;
                }
                self.checkpoint(progress, last).await?;
            }
        }
        Ok(())
    }

    /// Condemns what of `found` is garbage, and hands it to [`Collection::dispose`].
    async fn collect(&self, found: &[StoredBlob], before: i64, report: &mut GcReport) -> Result<(), JobError> {
        if found.is_empty() {
            return Ok(());
        }
        let sizes: HashMap<&str, u64> = found.iter().map(|b| (b.digest.as_str(), b.size)).collect();
        let mut digests: Vec<&str> = found.iter().map(|b| b.digest.as_str()).collect();
        if self.params.dry_run {
            let garbage = self.db().garbage_among(&digests, before, true).await?;
            count(&garbage, &sizes, report);
            return Ok(());
        }
        // What is plainly in use is left out by one read of index ranges; the rest is checked
        // digest by digest (under locks, in `condemn`). (Not in a dry run, which counts blobs
        // only stale links hold as garbage, though it removed none of those links.)
        digests.sort_unstable();
        let t = std::time::Instant::now();
        if let (Some(first), Some(last)) = (digests.first(), digests.last()) {
            let live = self.db().live_between(first, last).await?;
            digests.retain(|d| !live.contains(*d));
        }
        let buried = self.take_unburied();
        let buried: Vec<&str> = buried.iter().map(String::as_str).collect();
        let condemned = self.db().condemn(self.job.id, &digests, before, &buried).await?;
        self.time(|times| times.condemning += t.elapsed());
        self.dispose(condemned, &sizes, report).await
    }

    fn time(&self, f: impl FnOnce(&mut PhaseTimes)) {
        if let Ok(mut times) = self.times.lock() {
            f(&mut times);
        }
    }

    fn take_times(&self) -> PhaseTimes {
        self.times.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default()
    }

    fn take_unburied(&self) -> Vec<String> {
        self.unburied.lock().map(|mut u| std::mem::take(&mut *u)).unwrap_or_default()
    }

    /// Deletes the bytes of `condemned` on a task of its own, once the batch before is done
    /// (its share then added to `report`, its digests left to bury). `sizes`: as storage
    /// gave them.
    async fn dispose(
        &self,
        condemned: Vec<berth_db::gc::Condemned>,
        sizes: &HashMap<&str, u64>,
        report: &mut GcReport,
    ) -> Result<(), JobError> {
        self.settle(report).await?;
        if condemned.is_empty() {
            return Ok(());
        }
        let mut share = GcReport::default();
        count(&condemned, sizes, &mut share);
        let (store, workers) = (self.registry.store().clone(), self.params.workers);
        let task = tokio::spawn(async move {
            let names: Vec<&str> = condemned.iter().map(|c| c.digest.as_str()).collect();
            let t = std::time::Instant::now();
            delete_bytes(store.as_ref(), &names, workers).await?;
            let deleting = t.elapsed();
            Ok((share, condemned.into_iter().map(|c| c.digest).collect(), deleting))
        });
        if let Ok(mut slot) = self.in_flight.lock() {
            *slot = Some(task);
        }
        Ok(())
    }

    /// Waits for the batch in flight (if any), adds its share to `report` and leaves its
    /// digests to bury.
    async fn settle(&self, report: &mut GcReport) -> Result<(), JobError> {
        let task = self.in_flight.lock().ok().and_then(|mut slot| slot.take());
        let Some(task) = task else { return Ok(()) };
        let (share, deleted, deleting) =
            task.await.map_err(|e| JobError::Retry(format!("deleting a batch's bytes: {e}")))??;
        report.add(&share);
        if let Ok(mut unburied) = self.unburied.lock() {
            unburied.extend(deleted);
        }
        self.time(|times| times.deleting += deleting);
        Ok(())
    }

    /// Ends a phase: the batch in flight settled and everything deleted buried.
    async fn settle_and_bury(&self, report: &mut GcReport) -> Result<(), JobError> {
        self.settle(report).await?;
        let t = std::time::Instant::now();
        let buried = self.take_unburied();
        self.db().bury(&buried.iter().map(String::as_str).collect::<Vec<_>>()).await?;
        self.time(|times| times.burying += t.elapsed());
        Ok(())
    }

    /// Blob rows no repository links whose bytes the sweep did not find (lost, or written by
    /// a crash): condemned and buried like the rest (deleting absent bytes is no error).
    async fn rows_without_bytes(&self, progress: &mut Progress) -> Result<(), JobError> {
        let before = self.cutoff();
        loop {
            let rows = self.db().unlinked_blobs(before, &progress.rows_after, BATCH as i64).await?;
            let Some(last) = rows.last() else { break };
            progress.rows_after = last.clone();
            let names: Vec<&str> = rows.iter().map(String::as_str).collect();
            if self.params.dry_run {
                // Those with bytes were counted by the sweep, which deleted nothing.
                for g in self.db().garbage_among(&names, before, true).await? {
                    let Ok(digest) = Digest::parse(&g.digest) else { continue };
                    let stored = self.registry.store().stat(&digest).await;
                    if stored.map_err(|e| JobError::Retry(e.to_string()))?.is_none() {
                        progress.report.purged_blobs += 1;
                    }
                }
            } else {
                let condemned = self.db().condemn(self.job.id, &names, before, &[]).await?;
                let doomed: Vec<&str> = condemned.iter().map(|c| c.digest.as_str()).collect();
                delete_bytes(self.registry.store().as_ref(), &doomed, self.params.workers).await?;
                self.db().bury(&doomed).await?;
                progress.report.purged_blobs += condemned.len() as u64;
            }
            self.checkpoint(progress, false).await?;
        }
        progress.rows_done = true;
        self.checkpoint(progress, true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harbor_parameters() {
        let p = GcParams::from_json(&serde_json::json!({"dry_run": true, "workers": 3}), 2).unwrap();
        assert_eq!(p, GcParams { delete_untagged: true, dry_run: true, workers: 3, time_window: 2 });
        let p = GcParams::from_json(&serde_json::json!({"delete_untagged": "false", "time_window": 0}), 2).unwrap();
        assert!(!p.delete_untagged);
        assert_eq!(p.time_window, 0);
        assert_eq!(GcParams::from_json(&serde_json::Value::Null, 5).unwrap().time_window, 5);
        for bad in [
            serde_json::json!({"workers": 0}),
            serde_json::json!({"workers": 11}),
            serde_json::json!({"workers": "many"}),
            serde_json::json!({"dry_run": 1}),
            serde_json::json!({"time_window": -1}),
            serde_json::json!({"delete_everything": true}),
            serde_json::json!([1]),
        ] {
            assert!(GcParams::from_json(&bad, 2).is_err(), "{bad}");
        }
        assert_eq!(
            GcParams::from_json(&serde_json::json!({"workers": 11}), 2).unwrap_err().0,
            "Workers must be greater than 0 and less than or equal to 10"
        );
    }
}
