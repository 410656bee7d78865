//! Harbor's artifact additions: what the portal shows beside an artifact, read from its
//! content: an image's build history (from its config), a Helm chart's values, readme and
//! dependencies (from the chart archive), an SBOM accessory's document.

use std::io::Read;

use berth_oci::Digest;
use bytes::Bytes;
use serde::Deserialize;

use crate::Registry;
use berth_oci::media_type::IMAGE_CONFIGS;

const CHART_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
const CHART_CONTENT: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
const HARBOR_SBOM: &str = "application/vnd.goharbor.harbor.sbom.v1";

/// The most a config, chart archive or SBOM may weigh to be read for an addition, and the most
/// a chart may expand to: additions are read into memory.
const MAX_SOURCE: u64 = 32 << 20;
const MAX_EXPANDED: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum AdditionError {
    #[error("{0}")]
    Unsupported(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<crate::RegistryError> for AdditionError {
    fn from(e: crate::RegistryError) -> Self {
        AdditionError::Internal(e.to_string())
    }
}

impl From<berth_db::DbError> for AdditionError {
    fn from(e: berth_db::DbError) -> Self {
        AdditionError::Internal(e.to_string())
    }
}

/// An addition's bytes and their content type, as Harbor labels them.
pub struct Addition {
    pub content_type: &'static str,
    pub content: Bytes,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

impl Registry {
    /// The addition `kind` of the artifact `digest` in a repository.
    pub async fn addition(&self, repository_id: i64, digest: &str, kind: &str) -> Result<Addition, AdditionError> {
        let row = self
            .db()
            .manifest_by_digest(repository_id, digest)
            .await?
            .ok_or_else(|| AdditionError::NotFound(format!("artifact {digest}")))?;
        let bytes = self.read_digest(&row.digest, row.size).await?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|_| AdditionError::Unsupported(format!("{} has no additions", row.media_type)))?;
        let config_type = manifest.config.as_ref().map(|c| c.media_type.as_str()).unwrap_or("");
        let artifact_type = manifest.artifact_type.as_deref().unwrap_or(config_type);
        let unsupported =
            || AdditionError::Unsupported(format!("addition {kind} is not supported for {artifact_type:?} artifacts"));
        match kind {
            "build_history" if IMAGE_CONFIGS.contains(&config_type) => {
                let config = manifest.config.as_ref().ok_or_else(unsupported)?;
                let config = self.read_digest(&config.digest, config.size).await?;
                Ok(Addition { content_type: "application/json; charset=utf-8", content: build_history(&config)? })
            }
            "values.yaml" | "readme.md" | "dependencies" if config_type == CHART_CONFIG => {
                let layer = manifest.layers.iter().find(|l| l.media_type == CHART_CONTENT).ok_or_else(unsupported)?;
                let archive = self.read_digest(&layer.digest, layer.size).await?;
                let chart = tokio::task::spawn_blocking(move || Chart::read(&archive))
                    .await
                    .map_err(|e| AdditionError::Internal(e.to_string()))??;
                chart.addition(kind)
            }
            "sbom" if artifact_type == HARBOR_SBOM => {
                let layer = manifest.layers.first().ok_or_else(unsupported)?;
                let document = self.read_digest(&layer.digest, layer.size).await?;
                Ok(Addition { content_type: "application/json; charset=utf-8", content: document })
            }
            "build_history" | "values.yaml" | "readme.md" | "dependencies" | "sbom" | "license" | "files" => {
                Err(unsupported())
            }
            other => Err(AdditionError::Unsupported(format!("unknown addition {other:?}"))),
        }
    }

    async fn read_digest(&self, digest: &str, size: i64) -> Result<Bytes, AdditionError> {
        if size < 0 || size as u64 > MAX_SOURCE {
            return Err(AdditionError::Unsupported(format!("{digest} is too large to read for an addition")));
        }
        let digest = Digest::parse(digest).map_err(|e| AdditionError::Internal(e.to_string()))?;
        Ok(self.read_small_blob(&digest, size as u64).await?)
    }
}

/// The `history` of an image config, as a JSON array (empty when the config has none).
fn build_history(config: &[u8]) -> Result<Bytes, AdditionError> {
    let config: serde_json::Value = serde_json::from_slice(config)
        .map_err(|e| AdditionError::Unsupported(format!("the image config is not JSON: {e}")))?;
    let history = config.get("history").cloned().unwrap_or_else(|| serde_json::json!([]));
    serde_json::to_vec(&history).map(Bytes::from).map_err(|e| AdditionError::Internal(e.to_string()))
}

/// The top-level files of a chart archive that additions come from.
#[derive(Default)]
struct Chart {
    chart_yaml: Option<Vec<u8>>,
    requirements_yaml: Option<Vec<u8>>,
    values: Option<Vec<u8>>,
    readme: Option<Vec<u8>>,
}

impl Chart {
    /// Reads `<chart>/Chart.yaml`, `values.yaml`, `requirements.yaml` and the readme (any case)
    /// from a gzipped tar, ignoring subcharts, within [`MAX_EXPANDED`] bytes.
    fn read(archive: &[u8]) -> Result<Chart, AdditionError> {
        let bad = |e: std::io::Error| AdditionError::Unsupported(format!("the chart archive is unreadable: {e}"));
        let gz = flate2::read::GzDecoder::new(archive).take(MAX_EXPANDED);
        let mut tar = tar::Archive::new(gz);
        let mut chart = Chart::default();
        for entry in tar.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
            let mut parts = path.trim_start_matches("./").splitn(3, '/');
            let (Some(_chart_dir), Some(file), None) = (parts.next(), parts.next(), parts.next()) else { continue };
            let slot = match file {
                "Chart.yaml" => &mut chart.chart_yaml,
                "requirements.yaml" => &mut chart.requirements_yaml,
                "values.yaml" => &mut chart.values,
                f if f.eq_ignore_ascii_case("readme.md") => &mut chart.readme,
                _ => continue,
            };
            let mut content = Vec::new();
            entry.read_to_end(&mut content).map_err(bad)?;
            *slot = Some(content);
        }
        if chart.chart_yaml.is_none() {
            return Err(AdditionError::Unsupported("the chart archive has no Chart.yaml".into()));
        }
        Ok(chart)
    }

    fn addition(self, kind: &str) -> Result<Addition, AdditionError> {
        match kind {
            "values.yaml" => Ok(Addition {
                content_type: "text/plain; charset=utf-8",
                content: Bytes::from(self.values.unwrap_or_default()),
            }),
            "readme.md" => Ok(Addition {
                content_type: "text/markdown; charset=utf-8",
                content: Bytes::from(self.readme.unwrap_or_default()),
            }),
            _ => {
                // Chart API v2 lists dependencies in Chart.yaml; v1 in requirements.yaml.
                let mut dependencies = dependencies_of(self.chart_yaml.as_deref())?;
                if dependencies.is_empty() {
                    dependencies = dependencies_of(self.requirements_yaml.as_deref())?;
                }
                let content = serde_json::to_vec(&dependencies).map_err(|e| AdditionError::Internal(e.to_string()))?;
                Ok(Addition { content_type: "application/json; charset=utf-8", content: Bytes::from(content) })
            }
        }
    }
}

fn dependencies_of(yaml: Option<&[u8]>) -> Result<Vec<serde_json::Value>, AdditionError> {
    #[derive(Deserialize)]
    struct WithDependencies {
        #[serde(default)]
        dependencies: Option<Vec<serde_json::Value>>,
    }
    let Some(yaml) = yaml else { return Ok(Vec::new()) };
    let text = std::str::from_utf8(yaml).map_err(|_| AdditionError::Unsupported("Chart.yaml is not UTF-8".into()))?;
    let parsed: WithDependencies = serde_saphyr::from_str(text)
        .map_err(|e| AdditionError::Unsupported(format!("Chart.yaml does not parse: {e}")))?;
    Ok(parsed.dependencies.unwrap_or_default())
}
