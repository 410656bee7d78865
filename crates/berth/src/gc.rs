//! `berth admin gc`: one collection, queued on the installation's job service and followed to
//! its end with a progress bar and a summary. The process runs the job itself unless a
//! running replica claims it first; either way it follows the job in the database, so a
//! collection it started survives it (another replica takes it over).

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use berth_core::Registry;
use berth_db::jobs::status;
use berth_gc::collections::Collections;
use berth_gc::{GarbageCollector, GcParams, GcReport, SHARDS, report_of};

use berth::config::Config;

pub struct GcArgs {
    pub dry_run: bool,
    pub delete_untagged: bool,
    pub workers: usize,
}

/// Runs a collection; whether it succeeded.
pub async fn run(config: &Config, args: &GcArgs) -> anyhow::Result<bool> {
    let db = crate::server::open_database(config).await?;
    let store = config.blob_store()?;
    let registry = Registry::new(db.clone(), store).with_settings(config.starting_settings()?, Default::default());
    registry.settings().reload().await.context("reading the system configuration")?;
    // A collection deletes content, which read_only forbids (a dry run deletes nothing).
    if registry.settings().get().read_only && !args.dry_run {
        anyhow::bail!("the registry is read-only (read_only is on): turn it off to collect garbage, or use --dry-run");
    }
    let registry = Arc::new(registry);
    let params = GcParams::from_json(
        &serde_json::json!({"dry_run": args.dry_run, "delete_untagged": args.delete_untagged, "workers": args.workers}),
        config.gc.time_window_hours,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let id = Collections::new(db.clone(), config.gc.time_window_hours)
        .run_now(&params)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!(
        "garbage collection {id} queued (dry_run={}, delete_untagged={}, workers={})",
        params.dry_run, params.delete_untagged, params.workers
    );
    let mut jobs = berth_jobs::JobService::new(db.clone(), config.jobs.settings());
    jobs.refuse_changes_while(registry.settings().read_only_gate());
    jobs.register(Arc::new(GarbageCollector::new(registry, config.gc.time_window_hours)));
    let runner = Arc::new(jobs).spawn();
    let job = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Some(job) = db.job(id).await.context("reading the collection")? else {
            anyhow::bail!("collection {id} is gone from the job table");
        };
        draw(&report_of(&job.progress).unwrap_or_default(), &job.status);
        if job.finished_at.is_some() {
            break job;
        }
    };
    runner.abort();
    eprintln!();
    let r = report_of(&job.progress).unwrap_or_default();
    print!("{}", job.log);
    println!(
        "{}: {} blobs and {} manifests {}, {} untagged artifacts, {} unreferenced links; {} freed",
        job.status,
        r.purged_blobs,
        r.purged_manifests,
        if params.dry_run { "would be deleted" } else { "deleted" },
        r.purged_artifacts,
        r.purged_links,
        human_bytes(r.freed_space)
    );
    db.close().await;
    Ok(job.status == status::SUCCESS)
}

/// One line on standard error, redrawn: shards swept of all, and what went so far.
fn draw(r: &GcReport, status: &str) {
    const WIDTH: usize = 30;
    let done = r.shards_swept.min(SHARDS);
    let filled = done * WIDTH / SHARDS;
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "\r[{}{}] {done:>3}/{SHARDS} shards  {} blobs  {} manifests  {}  {status:<8}",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        r.purged_blobs,
        r.purged_manifests,
        human_bytes(r.freed_space)
    );
    let _ = err.flush();
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bytes_for_people() {
        assert_eq!(super::human_bytes(512), "512 B");
        assert_eq!(super::human_bytes(1536), "1.5 KiB");
        assert_eq!(super::human_bytes(3 << 30), "3.0 GiB");
    }
}
