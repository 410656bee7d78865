//! The vulnerability database's scheduled download: the `VULNDB_UPDATE` job fetches each
//! configured feed (as its upstream publishes it) and imports it as `berth vulndb import`
//! does, so a running registry scans with it at once.
//!
//! Each download is hashed as it is written; a feed whose bytes are those of its last import
//! (its recorded source is the URL and that digest) is not imported again, so a schedule
//! that fires every few hours rewrites the tables only when the upstream changed. A feed that
//! fails leaves the others' imports in place and makes the job fail, to be retried with
//! backoff; the age of each feed is in the metrics (`berth_vulndb_feed_imported_timestamp_seconds`)
//! and the stale-database alert watches it.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use berth_db::Db;
use berth_jobs::{JobContext, JobError, Worker};
use berth_oci::{Algorithm, Hasher};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::vulndb::{self, VulnDbError};

/// The job kind (a Berth job: Harbor's Trivy adapter updates its database by itself).
pub const JOB_KIND: &str = "VULNDB_UPDATE";

/// Suffixes `feed::walk` reads as one feed file; anything else is one record file, imported
/// from a directory holding it.
const ARCHIVES: [&str; 5] = [".zip", ".tar.gz", ".tgz", ".xml", ".xml.gz"];

/// Fetches and imports the configured feeds.
pub struct FeedDownloader {
    db: Db,
    client: reqwest::Client,
    urls: Vec<String>,
    scratch: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{0}")]
    Http(String),
    #[error("writing the download: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Import(#[from] VulnDbError),
}

impl FeedDownloader {
    /// `client` is made on the `trivy` component's proxy route; downloads are written under
    /// `scratch` (on the data volume: a feed may be larger than a container's temporary space)
    /// and removed once imported.
    pub fn new(db: Db, client: reqwest::Client, urls: Vec<String>, scratch: PathBuf) -> FeedDownloader {
        FeedDownloader { db, client, urls, scratch }
    }

    /// Whether any configured feed has never been imported (so a first start fetches at once
    /// rather than at the first scheduled time).
    pub async fn any_never_imported(&self) -> Result<bool, VulnDbError> {
        let feeds = self.db.vuln_feeds().await?;
        Ok(self.urls.iter().any(|url| !feeds.iter().any(|f| f.source.starts_with(&format!("{url} sha256:")))))
    }

    /// Fetches `url` and imports it unless it is what was imported last; what happened, for
    /// the job's log.
    pub async fn update(&self, url: &str) -> Result<String, DownloadError> {
        std::fs::create_dir_all(&self.scratch)?;
        let dir = tempfile::Builder::new().prefix("vulndb-").tempdir_in(&self.scratch)?;
        let file = dir.path().join(file_name(url));
        let started = std::time::Instant::now();
        let (bytes, digest) = self.fetch(url, &file).await?;
        let source = format!("{url} {digest}");
        if self.db.vuln_feeds().await.map_err(VulnDbError::from)?.iter().any(|f| f.source == source) {
            return Ok(format!("{url}: unchanged ({bytes} bytes, {digest}); nothing imported"));
        }
        let lower = file.to_string_lossy().to_ascii_lowercase();
        let path: &Path = if ARCHIVES.iter().any(|s| lower.ends_with(s)) { &file } else { dir.path() };
        let imported = vulndb::import_from(&self.db, path, &source).await?;
        let feeds: Vec<String> = imported.feeds.iter().map(|f| format!("{} ({})", f.name, f.advisories)).collect();
        Ok(format!(
            "{url}: {bytes} bytes in {:.1} s, {} advisories imported into {}",
            started.elapsed().as_secs_f64(),
            imported.walk.advisories,
            feeds.join(", ")
        ))
    }

    /// Streams `url`'s body into `file`; its length and digest.
    async fn fetch(&self, url: &str, file: &Path) -> Result<(u64, berth_oci::Digest), DownloadError> {
        let http = |e: reqwest::Error| DownloadError::Http(format!("{url}: {}", error_chain(&e)));
        let response = self.client.get(url).send().await.map_err(http)?;
        let status = response.status();
        if !status.is_success() {
            return Err(DownloadError::Http(format!("{url}: the server answered {status}")));
        }
        let mut out = tokio::fs::File::create(file).await?;
        let mut hasher = Hasher::new(Algorithm::Sha256);
        let mut bytes = 0u64;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(http)?;
            hasher.update(&chunk);
            bytes += chunk.len() as u64;
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        Ok((bytes, hasher.finish()))
    }
}

/// The download's file name: the URL path's last segment (what tells `feed::walk` its kind),
/// kept to characters safe in a file name.
fn file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let path = path.split_once("://").map_or(path, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    let last = path.rsplit('/').next().unwrap_or("");
    let safe: String =
        last.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
    if safe.trim_matches('.').is_empty() { "feed".to_string() } else { safe }
}

/// reqwest's error with its causes (a connect error says why only in its source).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[async_trait]
impl Worker for FeedDownloader {
    fn kind(&self) -> &'static str {
        JOB_KIND
    }

    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let mut failed = Vec::new();
        for url in &self.urls {
            if job.stop_requested() {
                return Err(JobError::Stopped);
            }
            match self.update(url).await {
                Ok(done) => job.log(&done).await?,
                Err(e) => {
                    job.log(&format!("{url}: failed: {e}")).await?;
                    failed.push(e.to_string());
                }
            }
        }
        match failed.first() {
            None => Ok(()),
            Some(first) => Err(JobError::Retry(format!(
                "{} of {} feeds failed (the others were imported); the first: {first}",
                failed.len(),
                self.urls.len()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn the_file_name_keeps_the_kind_of_feed() {
        assert_eq!(file_name("https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip"), "all.zip");
        assert_eq!(file_name("https://secdb.alpinelinux.org/v3.20/main.json?x=1#y"), "main.json");
        assert_eq!(file_name("http://mirror/feeds/debian%20oval.xml.gz"), "debian_20oval.xml.gz");
        assert_eq!(file_name("http://mirror/"), "feed");
        assert_eq!(file_name("http://mirror"), "feed");
        assert_eq!(file_name("http://mirror/.."), "feed");
    }
}
