//! The vulnerability database's model: an advisory, the packages it affects and how (OSV's
//! ranges and version lists), and the decision whether an installed version is affected.
//!
//! Every feed is read into this one shape (OSV as it is; distribution feeds as OSV would
//! write them), so matching has one implementation, the OSV specification's.

use crate::version::{InvalidVersion, Scheme};

/// Harbor's severities, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Severity {
    None,
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Harbor's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::None => "None",
            Severity::Unknown => "Unknown",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }

    /// A feed's word for a severity (GHSA's `MODERATE`, Debian's `medium`, Harbor's own).
    pub fn from_word(word: &str) -> Option<Severity> {
        Some(match word.trim().to_ascii_lowercase().as_str() {
            "none" | "negligible" => Severity::None,
            "unknown" | "unimportant" | "not yet assigned" => Severity::Unknown,
            "low" => Severity::Low,
            "medium" | "moderate" => Severity::Medium,
            "high" | "important" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

/// A CVSS vector an advisory gives, with the base score and severity it works out to (read
/// with the `cvss` crate).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cvss {
    pub vector: String,
    pub score: f64,
    pub severity: Severity,
}

impl Cvss {
    /// `None` for a vector the crate cannot read.
    pub fn parse(vector: &str) -> Option<Cvss> {
        let parsed: cvss::Cvss = vector.trim().parse().ok()?;
        let severity = match parsed.severity() {
            cvss::Severity::None => Severity::None,
            cvss::Severity::Low => Severity::Low,
            cvss::Severity::Medium => Severity::Medium,
            cvss::Severity::High => Severity::High,
            cvss::Severity::Critical => Severity::Critical,
        };
        Some(Cvss { vector: vector.trim().to_string(), score: parsed.score(), severity })
    }
}

/// One event of a range, in OSV's sense.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Affected from this version on (`0`: from the first).
    Introduced(String),
    /// Not affected from this version on.
    Fixed(String),
    /// Affected up to and including this version.
    LastAffected(String),
    /// Nothing at or above this version is in the range.
    Limit(String),
}

impl Event {
    fn version(&self) -> &str {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        }
    }
}

/// How a range's versions are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RangeKind {
    /// The ecosystem's own ordering.
    Ecosystem,
    /// SemVer 2.0, whatever the ecosystem.
    SemVer,
    /// Commits of a repository: not evaluated against package versions.
    Git,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Range {
    pub kind: RangeKind,
    pub events: Vec<Event>,
}

/// A package an advisory affects.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Affected {
    /// OSV's ecosystem, with its release where the feed scopes one (`Debian:12`,
    /// `Alpine:v3.20`).
    pub ecosystem: String,
    /// The package's name as the ecosystem spells it (a source package for distributions).
    pub name: String,
    pub ranges: Vec<Range>,
    /// Versions listed one by one (affected whatever the ranges say).
    pub versions: Vec<String>,
}

impl Affected {
    /// Whether `version` is affected: listed, or inside a range (OSV's evaluation: events in
    /// version order, `introduced` opens, `fixed` and past `last_affected` close).
    pub fn includes(&self, version: &str) -> Result<bool, InvalidVersion> {
        if self.versions.iter().any(|v| v == version) {
            return Ok(true);
        }
        let ecosystem_scheme = Scheme::for_ecosystem(&self.ecosystem);
        for range in &self.ranges {
            let scheme = match (range.kind, ecosystem_scheme) {
                (RangeKind::Git, _) | (RangeKind::Ecosystem, None) => continue,
                (RangeKind::SemVer, _) => Scheme::SemVer,
                (RangeKind::Ecosystem, Some(s)) => s,
            };
            if in_range(scheme, &range.events, version)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The versions that fix it, in the order the feed gives them.
    pub fn fixed_versions(&self) -> Vec<&str> {
        self.ranges
            .iter()
            .flat_map(|r| r.events.iter())
            .filter_map(|e| match e {
                Event::Fixed(v) => Some(v.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The fix the affected `version` needs: the lowest fixed version above it.
    pub fn fix_for(&self, version: &str) -> Option<String> {
        let scheme = Scheme::for_ecosystem(&self.ecosystem)?;
        let mut fixes: Vec<&str> =
            self.fixed_versions().into_iter().filter(|f| scheme.compare(f, version).is_ok_and(|o| o.is_gt())).collect();
        fixes.sort_by(|a, b| scheme.compare(a, b).unwrap_or(std::cmp::Ordering::Equal));
        fixes.first().map(|f| f.to_string())
    }
}

fn in_range(scheme: Scheme, events: &[Event], version: &str) -> Result<bool, InvalidVersion> {
    // `introduced: 0` is before every version.
    let order = |a: &Event, b: &Event| -> Result<std::cmp::Ordering, InvalidVersion> {
        match (a, b) {
            (Event::Introduced(x), Event::Introduced(y)) if x == "0" && y == "0" => Ok(std::cmp::Ordering::Equal),
            (Event::Introduced(x), _) if x == "0" => Ok(std::cmp::Ordering::Less),
            (_, Event::Introduced(y)) if y == "0" => Ok(std::cmp::Ordering::Greater),
            _ => scheme.compare(a.version(), b.version()),
        }
    };
    let mut sorted: Vec<&Event> = events.iter().collect();
    // Sorting needs a total order: check every version reads before trusting the comparator.
    for e in &sorted {
        if !matches!(e, Event::Introduced(v) if v == "0") {
            scheme.compare(e.version(), e.version())?;
        }
    }
    sorted.sort_by(|a, b| order(a, b).unwrap_or(std::cmp::Ordering::Equal));
    let at_or_above = |v: &str| -> Result<bool, InvalidVersion> { Ok(scheme.compare(version, v)?.is_ge()) };
    let mut affected = false;
    for event in sorted {
        match event {
            Event::Introduced(v) => {
                if v == "0" || at_or_above(v)? {
                    affected = true;
                }
            }
            Event::Fixed(v) => {
                if at_or_above(v)? {
                    affected = false;
                }
            }
            Event::LastAffected(v) => {
                if scheme.compare(version, v)?.is_gt() {
                    affected = false;
                }
            }
            Event::Limit(v) => {
                if at_or_above(v)? {
                    affected = false;
                }
            }
        }
    }
    Ok(affected)
}

/// One advisory of the database.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Advisory {
    /// The feed's id (`RUSTSEC-2021-0078`, `PYSEC-2019-217`, `GO-2022-0969`).
    pub id: String,
    /// Other ids of the same issue (CVE and GHSA ids among them).
    pub aliases: Vec<String>,
    pub summary: String,
    pub details: String,
    pub severity: Severity,
    /// The CVSS vectors given, v3 first.
    pub cvss: Vec<Cvss>,
    pub cwe_ids: Vec<String>,
    pub references: Vec<String>,
    /// RFC 3339, as the feed gives them.
    pub published: Option<String>,
    pub modified: Option<String>,
    /// Withdrawn by its feed: kept (an import replaces it) but never matched.
    pub withdrawn: bool,
    /// Not a vulnerability (RustSec's `unmaintained`, `unsound`, `notice`): never matched
    /// by a vulnerability scan.
    pub informational: bool,
    pub affected: Vec<Affected>,
}

/// The name as the ecosystem compares it: PyPI's PEP 503 normalization (case, and runs of
/// `-`, `_`, `.`), otherwise as spelled.
pub fn normalize_name(ecosystem: &str, name: &str) -> String {
    let base = ecosystem.split(':').next().unwrap_or(ecosystem);
    if base == "PyPI" {
        let mut out = String::with_capacity(name.len());
        let mut separator = false;
        for c in name.trim().chars() {
            if matches!(c, '-' | '_' | '.') {
                separator = true;
            } else {
                if separator && !out.is_empty() {
                    out.push('-');
                }
                separator = false;
                out.push(c.to_ascii_lowercase());
            }
        }
        out
    } else {
        name.trim().to_string()
    }
}

impl Advisory {
    /// Whether this advisory names the package `name` of `ecosystem` at `version` as
    /// vulnerable; the affected entry that does. An advisory scoped to a release
    /// (`Debian:12`) matches that release only; one without a release, every release.
    pub fn affecting(&self, ecosystem: &str, name: &str, version: &str) -> Result<Option<&Affected>, InvalidVersion> {
        if self.withdrawn || self.informational {
            return Ok(None);
        }
        let wanted = normalize_name(ecosystem, name);
        for affected in &self.affected {
            if !same_ecosystem(&affected.ecosystem, ecosystem)
                || normalize_name(&affected.ecosystem, &affected.name) != wanted
            {
                continue;
            }
            if affected.includes(version)? {
                return Ok(Some(affected));
            }
        }
        Ok(None)
    }
}

/// `advisory` (maybe unscoped) covers the package's `ecosystem` (maybe scoped).
pub fn same_ecosystem(advisory: &str, package: &str) -> bool {
    if advisory == package {
        return true;
    }
    match advisory.split_once(':') {
        Some(_) => false,
        None => package.split(':').next() == Some(advisory),
    }
}
