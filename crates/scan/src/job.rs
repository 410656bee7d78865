//! The scan job (Harbor's `IMAGE_SCAN`), on the job service: reads the artifact's manifest and
//! layers from storage (a layer analysed before, by any image, is read from `scan_layers`
//! instead), matches the inventory against the vulnerability database, and records the
//! report and its summary.

use std::io::Read;
use std::sync::Arc;

use async_trait::async_trait;
use berth_db::Db;
use berth_db::jobs::JobRequest;
use berth_db::scans::{ScanRequest, ScanResult, scan_status};
use berth_jobs::{JobContext, JobError, Worker};
use berth_oci::Digest;
use berth_store::{BlobBody, BlobStore};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::inventory::inventory;
use crate::layers::{ANALYZER_VERSION, LayerFiles, read_layer, stack};
use crate::matching::find_vulnerabilities;
use crate::report::{ArtifactRef, VULNERABILITY_REPORT, build, finding_keys};

/// Harbor's job name for scans.
pub const JOB_KIND: &str = "IMAGE_SCAN";
/// The registration id of the built-in scanner (Harbor's registrations are UUIDs; this one is
/// fixed, so every replica names the same).
pub const BUILTIN_REGISTRATION: &str = "00000000-0000-4000-8000-000000000b17";

/// What a scan job is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanParameters {
    /// The report's id.
    pub report: String,
    pub repository: String,
    pub digest: String,
    pub media_type: String,
}

/// The job of a scan by the built-in scanner, filling report `report`.
pub fn builtin_scan_job(
    report: &str,
    repository: &str,
    digest: &str,
    media_type: &str,
) -> Result<JobRequest, serde_json::Error> {
    let parameters = ScanParameters {
        report: report.to_string(),
        repository: repository.to_string(),
        digest: digest.to_string(),
        media_type: media_type.to_string(),
    };
    Ok(JobRequest { kind: JOB_KIND.to_string(), parameters: serde_json::to_string(&parameters)?, max_attempts: 1 })
}

/// A scan of `digest` by the built-in scanner: its vulnerability report `report`, and `job`.
pub fn builtin_scan<'a>(report: &'a str, digest: &'a str, job: JobRequest) -> ScanRequest<'a> {
    ScanRequest { uuid: report, digest, registration: BUILTIN_REGISTRATION, mime_type: VULNERABILITY_REPORT, job }
}

/// Whether the built-in scanner reads an artifact of this manifest and config media type: an
/// image (Harbor's Trivy adapter takes the same). Indexes are scanned by their images; charts,
/// signatures and other artifacts hold no filesystem.
pub fn scannable(manifest_media_type: &str, config_media_type: &str) -> bool {
    !berth_oci::media_type::is_index(manifest_media_type)
        && berth_oci::media_type::IMAGE_CONFIGS.contains(&config_media_type)
}

/// A scan that succeeded: its severity and JSON documents (as `db::scans::ScanResult` stores
/// them), and how many findings.
struct ScanDone {
    severity: String,
    summary: String,
    report: String,
    findings: String,
    vulnerabilities: Vec<berth_db::scans::VulnerabilityRow>,
    found: usize,
}

/// The worker of scan jobs.
pub struct ScanWorker {
    db: Db,
    store: Arc<dyn BlobStore>,
}

impl ScanWorker {
    pub fn new(db: Db, store: Arc<dyn BlobStore>) -> ScanWorker {
        ScanWorker { db, store }
    }
}

#[async_trait]
impl Worker for ScanWorker {
    fn kind(&self) -> &'static str {
        JOB_KIND
    }

    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let params: ScanParameters = serde_json::from_value(job.parameters.clone())
            .map_err(|e| JobError::Fatal(format!("invalid parameters: {e}")))?;
        self.db.scan_started(&params.report).await?;
        job.log(&format!("scanning {}@{}", params.repository, params.digest)).await?;
        match self.scan(&params, job).await {
            Ok(done) => {
                let result = ScanResult {
                    severity: &done.severity,
                    summary: &done.summary,
                    report: &done.report,
                    findings: &done.findings,
                    vulnerabilities: &done.vulnerabilities,
                };
                self.db.scan_ended(&params.report, scan_status::SUCCESS, Some(&result)).await?;
                job.log(&format!("{} vulnerabilities; the highest severity: {}", done.found, done.severity)).await?;
                Ok(())
            }
            Err(_) if job.stop_requested() => {
                let _ = job.log("stopped on request").await;
                self.db.scan_ended(&params.report, scan_status::STOPPED, None).await?;
                Err(JobError::Stopped)
            }
            Err(e) => {
                let _ = job.log(&format!("the scan failed: {e}")).await;
                self.db.scan_ended(&params.report, scan_status::ERROR, None).await?;
                Err(JobError::Fatal(e))
            }
        }
    }
}

/// The bytes of a blob the store gives, read on a blocking thread.
struct BodyReader {
    body: BodyState,
}

enum BodyState {
    File(std::io::Take<std::fs::File>),
    Stream { stream: berth_store::ByteStream, chunk: bytes::Bytes, handle: tokio::runtime::Handle },
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.body {
            BodyState::File(file) => file.read(buf),
            BodyState::Stream { stream, chunk, handle } => {
                while chunk.is_empty() {
                    // On a blocking thread, outside the runtime's workers: waiting here is allowed.
                    match handle.block_on(stream.next()) {
                        Some(Ok(next)) => *chunk = next,
                        Some(Err(e)) => return Err(std::io::Error::other(e)),
                        None => return Ok(0),
                    }
                }
                let n = buf.len().min(chunk.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                *chunk = chunk.slice(n..);
                Ok(n)
            }
        }
    }
}

fn reader(body: BlobBody) -> std::io::Result<BodyReader> {
    Ok(BodyReader {
        body: match body {
            BlobBody::File { mut file, start, len } => {
                use std::io::Seek;
                file.seek(std::io::SeekFrom::Start(start))?;
                BodyState::File(file.take(len))
            }
            BlobBody::Stream { stream, .. } => {
                BodyState::Stream { stream, chunk: bytes::Bytes::new(), handle: tokio::runtime::Handle::current() }
            }
        },
    })
}

impl ScanWorker {
    async fn blob(&self, digest: &str) -> Result<BlobBody, String> {
        let parsed = Digest::parse(digest).map_err(|e| format!("{digest}: {e}"))?;
        self.store.get(&parsed, None).await.map_err(|e| format!("reading {digest}: {e}"))
    }

    /// What layer `digest` holds that a scan reads: remembered, or read now and remembered.
    async fn layer(&self, digest: &str, job: &JobContext) -> Result<LayerFiles, String> {
        if let Some(kept) = self.db.scan_layer(digest).await.map_err(|e| e.to_string())?
            && let Ok(files) = serde_json::from_str::<LayerFiles>(&kept)
            && files.analyzer >= ANALYZER_VERSION
        {
            return Ok(files);
        }
        let body = reader(self.blob(digest).await?).map_err(|e| e.to_string())?;
        let files = tokio::task::spawn_blocking(move || read_layer(body))
            .await
            .map_err(|e| format!("layer {digest}: {e}"))?
            .map_err(|e| format!("layer {digest}: {e}"))?;
        let json = serde_json::to_string(&files).map_err(|e| e.to_string())?;
        self.db.save_scan_layer(digest, &json).await.map_err(|e| e.to_string())?;
        let _ = job.log(&format!("analysed layer {digest}")).await;
        Ok(files)
    }

    /// The scan, and what it found.
    async fn scan(&self, params: &ScanParameters, job: &JobContext) -> Result<ScanDone, String> {
        let mut manifest = Vec::new();
        let body = reader(self.blob(&params.digest).await?).map_err(|e| e.to_string())?;
        let limit = berth_oci::manifest::MAX_MANIFEST_SIZE as u64;
        let manifest =
            tokio::task::spawn_blocking(move || body.take(limit + 1).read_to_end(&mut manifest).map(|_| manifest))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("reading the manifest: {e}"))?;
        let parsed = berth_oci::manifest::parse(&manifest, Some(&params.media_type))
            .map_err(|e| format!("the manifest: {e}"))?;
        if parsed.config.is_none() {
            return Err("not an image manifest: an index is scanned through the images it lists".into());
        }
        let mut layers = Vec::new();
        let mut digests = Vec::new();
        for layer in &parsed.layers {
            if job.stop_requested() {
                return Err("stopped".into());
            }
            layers.push(self.layer(&layer.digest, job).await?);
            digests.push(layer.digest.clone());
        }
        let inventory = inventory(&stack(&layers)).map_err(|e| e.to_string())?;
        let index = crate::vulndb::index_for(&self.db, &inventory).await.map_err(|e| e.to_string())?;
        let findings = find_vulnerabilities(&inventory, &index);
        let artifact = ArtifactRef {
            repository: params.repository.clone(),
            digest: params.digest.clone(),
            mime_type: params.media_type.clone(),
        };
        let (report, summary) = build(artifact, &digests, &findings, jiff::Timestamp::now().to_string());
        let report_json = serde_json::to_string(&report).map_err(|e| e.to_string())?;
        let summary_json = serde_json::to_string(&summary).map_err(|e| e.to_string())?;
        let findings_json = serde_json::to_string(&finding_keys(&findings)).map_err(|e| e.to_string())?;
        let vulnerabilities = crate::report::vulnerability_rows(&report);
        Ok(ScanDone {
            severity: report.severity,
            summary: summary_json,
            report: report_json,
            findings: findings_json,
            vulnerabilities,
            found: findings.len(),
        })
    }
}
