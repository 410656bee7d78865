//! The vulnerability database in the registry's database: importing feeds into it (`berth
//! vulndb import`, and the scheduled download), and reading the advisories an inventory needs.
//!
//! A feed is what one id scheme files under one ecosystem and release (`crates.io:RUSTSEC`,
//! `Go:GO`, `Alpine:v3.20:CVE`, `Debian:12:CVE`): an import replaces each feed it holds whole, so a newer archive of
//! the same upstream replaces the older (advisories it dropped go too), and feeds it does not
//! hold stay. A running registry reads the tables on every scan, so a new import is used at
//! once, without a restart.

use std::path::Path;

use berth_db::Db;
use berth_db::vulndb::{AdvisoryRow, FeedRow};

use crate::advisory::{Advisory, normalize_name};
use crate::feed::{self, FeedError, WalkReport};
use crate::inventory::Inventory;
use crate::matching::AdvisoryIndex;

#[derive(Debug, thiserror::Error)]
pub enum VulnDbError {
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error(transparent)]
    Db(#[from] berth_db::DbError),
    #[error("{0}")]
    Invalid(String),
}

/// The ecosystem family of an OSV ecosystem (`Debian:12` is `Debian`).
pub fn family(ecosystem: &str) -> &str {
    ecosystem.split(':').next().unwrap_or(ecosystem)
}

/// The feed an advisory belongs to: its first package's ecosystem (with the release, so that
/// Debian 11's OVAL does not replace Debian 12's) and its id's scheme.
pub fn feed_of(advisory: &Advisory) -> String {
    let family = advisory.affected.first().map_or("", |a| a.ecosystem.as_str());
    let scheme = advisory.id.split('-').next().unwrap_or(&advisory.id);
    format!("{family}:{scheme}")
}

fn row_of(advisory: &Advisory) -> Result<AdvisoryRow, VulnDbError> {
    Ok(AdvisoryRow {
        feed: feed_of(advisory),
        advisory_id: advisory.id.clone(),
        body: serde_json::to_string(advisory).map_err(|e| VulnDbError::Invalid(e.to_string()))?,
        packages: advisory
            .affected
            .iter()
            .map(|a| (family(&a.ecosystem).to_string(), normalize_name(&a.ecosystem, &a.name)))
            .collect(),
    })
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub walk: WalkReport,
    pub feeds: Vec<FeedRow>,
}

/// Imports the feed(s) at `path` (a directory, `.tar.gz` or `.zip` in the upstream's layout).
/// Refused, changing nothing, when a record is broken or nothing in it is an advisory.
pub async fn import(db: &Db, path: &Path) -> Result<Imported, VulnDbError> {
    import_from(db, path, &path.display().to_string()).await
}

/// [`import`], recording `source` as where each feed came from (a download's URL and digest).
pub async fn import_from(db: &Db, path: &Path, source: &str) -> Result<Imported, VulnDbError> {
    let owned = path.to_path_buf();
    let (walk, rows) = tokio::task::spawn_blocking(move || -> Result<_, VulnDbError> {
        let mut rows = Vec::new();
        let mut failed = None;
        let walk = feed::walk(&owned, |a| match row_of(&a) {
            Ok(row) => rows.push(row),
            Err(e) => failed = Some(e),
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        Ok((walk, rows))
    })
    .await
    .map_err(|e| VulnDbError::Invalid(format!("reading the feed: {e}")))??;
    if !walk.errors.is_empty() {
        let shown: Vec<&String> = walk.errors.iter().take(5).collect();
        return Err(VulnDbError::Invalid(format!(
            "{} records cannot be read, so nothing was imported; the first: {shown:?}",
            walk.errors.len()
        )));
    }
    if rows.is_empty() {
        return Err(VulnDbError::Invalid(format!(
            "{}: no advisories found ({} other files); expected OSV records or Alpine secdb files",
            path.display(),
            walk.skipped
        )));
    }
    let feeds = db.replace_vuln_feeds(source, &rows).await?;
    Ok(Imported { walk, feeds })
}

/// The advisories that name any package of `inventory`, read from the database.
pub async fn index_for(db: &Db, inventory: &Inventory) -> Result<AdvisoryIndex, VulnDbError> {
    let mut wanted: Vec<(String, String)> = inventory
        .packages
        .iter()
        .filter(|p| !p.ecosystem.is_empty())
        .flat_map(|p| {
            p.package
                .advisory_keys()
                .map(|(name, _)| (family(&p.ecosystem).to_string(), normalize_name(&p.ecosystem, name)))
        })
        .collect();
    wanted.sort();
    wanted.dedup();
    let mut index = AdvisoryIndex::default();
    for (family, names) in wanted.chunk_by(|a, b| a.0 == b.0).map(|run| (&run[0].0, run)) {
        let names: Vec<&str> = names.iter().map(|(_, name)| name.as_str()).collect();
        for body in db.vuln_advisories_for_any(family, &names).await? {
            let advisory: Advisory = serde_json::from_str(&body)
                .map_err(|e| VulnDbError::Invalid(format!("a stored advisory of {family}: {e}")))?;
            index.add(advisory);
        }
    }
    Ok(index)
}

/// When the database last changed (ms since the epoch): what the scanner's metadata reports
/// as `vulnerability-database-updated-at`. `None` before any import.
pub async fn updated_at(db: &Db) -> Result<Option<i64>, VulnDbError> {
    Ok(db.vuln_feeds().await?.iter().map(|f| f.imported_at).max())
}
