//! OSV records (JSON, or YAML as PyPA writes them) read into [`Advisory`].
//!
//! Only what matching and reports need is kept; unknown fields are ignored, as the schema
//! allows. A record that is not OSV at all (a README, an index) is `Ok(None)`, so a walk over
//! a feed's tree can skip it; one that claims to be OSV and is broken is an error.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::advisory::{Advisory, Affected, Cvss, Event, Range, RangeKind, Severity};

/// A scalar read as text: YAML feeds leave versions such as `1.2` unquoted.
#[derive(Debug, Default)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Deserialize)]
struct Record {
    id: Option<Text>,
    #[serde(default)]
    aliases: Option<Vec<Text>>,
    summary: Option<Text>,
    details: Option<Text>,
    #[serde(default)]
    severity: Option<Vec<RawSeverity>>,
    #[serde(default)]
    affected: Option<Vec<RawAffected>>,
    #[serde(default)]
    references: Option<Vec<RawReference>>,
    published: Option<Text>,
    modified: Option<Text>,
    withdrawn: Option<Text>,
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawSeverity {
    #[serde(rename = "type")]
    kind: Option<Text>,
    score: Option<Text>,
}

#[derive(Deserialize)]
struct RawReference {
    url: Option<Text>,
}

#[derive(Deserialize)]
struct RawPackage {
    ecosystem: Option<Text>,
    name: Option<Text>,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type")]
    kind: Option<Text>,
    #[serde(default)]
    events: Option<Vec<BTreeMap<String, Text>>>,
}

#[derive(Deserialize)]
struct RawAffected {
    package: Option<RawPackage>,
    #[serde(default)]
    ranges: Option<Vec<RawRange>>,
    #[serde(default)]
    versions: Option<Vec<Text>>,
    #[serde(default)]
    severity: Option<Vec<RawSeverity>>,
    database_specific: Option<serde_json::Value>,
    ecosystem_specific: Option<serde_json::Value>,
}

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OsvError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not YAML: {0}")]
    Yaml(String),
    #[error("{0}")]
    Invalid(String),
}

/// Reads an OSV record in JSON.
pub fn from_json(bytes: &[u8]) -> Result<Option<Advisory>, OsvError> {
    from_value(serde_json::from_slice(bytes)?)
}

/// Reads an OSV record already parsed as JSON.
pub fn from_value(value: serde_json::Value) -> Result<Option<Advisory>, OsvError> {
    if !looks_like_osv(&value) {
        return Ok(None);
    }
    let record: Record = serde_json::from_value(value)?;
    convert(record).map(Some)
}

/// Reads an OSV record in YAML (PyPA's advisory database).
pub fn from_yaml(text: &str) -> Result<Option<Advisory>, OsvError> {
    let value: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| OsvError::Yaml(e.to_string()))?;
    if !looks_like_osv(&value) {
        return Ok(None);
    }
    let record: Record = serde_json::from_value(value)?;
    convert(record).map(Some)
}

/// An object with an `id` and `affected` (or a schema version): what every OSV record has.
fn looks_like_osv(value: &serde_json::Value) -> bool {
    value.get("id").is_some_and(|id| id.is_string())
        && (value.get("affected").is_some() || value.get("schema_version").is_some())
}

fn text(t: Option<Text>) -> Option<String> {
    t.map(|t| t.0).filter(|s| !s.is_empty())
}

fn cvss_of(severity: Option<Vec<RawSeverity>>) -> Vec<Cvss> {
    let mut found: Vec<(u8, Cvss)> = severity
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| {
            let kind = text(s.kind)?;
            let rank = match kind.as_str() {
                "CVSS_V3" => 0,
                "CVSS_V4" => 1,
                "CVSS_V2" => 2,
                _ => return None,
            };
            Some((rank, Cvss::parse(&text(s.score)?)?))
        })
        .collect();
    found.sort_by_key(|(rank, _)| *rank);
    found.into_iter().map(|(_, c)| c).collect()
}

fn convert(record: Record) -> Result<Advisory, OsvError> {
    let id = text(record.id).ok_or_else(|| OsvError::Invalid("a record without an id".into()))?;
    let mut cvss = cvss_of(record.severity);
    let mut informational = false;
    let mut word_severity = record
        .database_specific
        .as_ref()
        .and_then(|d| d.get("severity"))
        .and_then(|s| s.as_str())
        .and_then(Severity::from_word);
    let mut affected = Vec::new();
    for raw in record.affected.unwrap_or_default() {
        let Some(package) = raw.package else { continue };
        let (Some(ecosystem), Some(name)) = (text(package.ecosystem), text(package.name)) else {
            return Err(OsvError::Invalid(format!("{id}: an affected package without an ecosystem or a name")));
        };
        if let Some(d) = &raw.database_specific
            && d.get("informational").is_some_and(|i| i.is_string())
        {
            informational = true;
        }
        for specific in [&raw.ecosystem_specific, &raw.database_specific].into_iter().flatten() {
            if word_severity.is_none() {
                word_severity = specific.get("severity").and_then(|s| s.as_str()).and_then(Severity::from_word);
            }
        }
        if cvss.is_empty() {
            cvss = cvss_of(raw.severity);
        }
        let mut ranges = Vec::new();
        for range in raw.ranges.unwrap_or_default() {
            let kind = match text(range.kind).as_deref() {
                Some("ECOSYSTEM") => RangeKind::Ecosystem,
                Some("SEMVER") => RangeKind::SemVer,
                Some("GIT") => RangeKind::Git,
                other => return Err(OsvError::Invalid(format!("{id}: a range of type {other:?}"))),
            };
            let mut events = Vec::new();
            for event in range.events.unwrap_or_default() {
                for (key, value) in event {
                    events.push(match key.as_str() {
                        "introduced" => Event::Introduced(value.0),
                        "fixed" => Event::Fixed(value.0),
                        "last_affected" => Event::LastAffected(value.0),
                        "limit" => Event::Limit(value.0),
                        other => return Err(OsvError::Invalid(format!("{id}: an event {other:?}"))),
                    });
                }
            }
            ranges.push(Range { kind, events });
        }
        let versions = raw.versions.unwrap_or_default().into_iter().map(|v| v.0).collect();
        affected.push(Affected { ecosystem, name, ranges, versions });
    }
    let severity = cvss.first().map(|c| c.severity).or(word_severity).unwrap_or(Severity::Unknown);
    let cwe_ids = record
        .database_specific
        .as_ref()
        .and_then(|d| d.get("cwe_ids"))
        .and_then(|c| c.as_array())
        .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    Ok(Advisory {
        id,
        aliases: record.aliases.unwrap_or_default().into_iter().map(|a| a.0).collect(),
        summary: text(record.summary).unwrap_or_default(),
        details: text(record.details).unwrap_or_default(),
        severity,
        cvss,
        cwe_ids,
        references: record.references.unwrap_or_default().into_iter().filter_map(|r| text(r.url)).collect(),
        published: text(record.published),
        modified: text(record.modified),
        withdrawn: text(record.withdrawn).is_some(),
        informational,
        affected,
    })
}
