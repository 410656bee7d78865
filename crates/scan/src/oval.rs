//! OVAL definitions of dpkg-based distributions, read as a stream (the files are tens of MiB)
//! into advisories as OSV would write them:
//! - Debian's (`oval-definitions-<release>.xml`, as www.debian.org/security/oval/ publishes
//!   them): one `vulnerability` definition per (CVE, source package), whose `dpkginfo` test
//!   says "affected while earlier than" a version, scoped to the release its platform names;
//! - Canonical's USN OVAL (`com.ubuntu.<release>.usn.oval.xml`): one `patch` definition per
//!   Ubuntu Security Notice, its CVEs and priority, whose tests name *binary* packages, often
//!   through a `constant_variable` list, each "less than" the fixed version; scoped to the
//!   release the file's `inventory` definition checks for (`Ubuntu 24.04 LTS` is `Ubuntu:24.04`).

use std::collections::HashMap;
use std::io::BufRead;

use quick_xml::events::Event;

use crate::advisory::{Advisory, Affected, Event as RangeEvent, Range, RangeKind, Severity};

#[derive(Debug, thiserror::Error)]
pub enum OvalError {
    #[error("not OVAL XML: {0}")]
    Xml(String),
    #[error("{0}")]
    Invalid(String),
}

#[derive(Default)]
struct Definition {
    id: String,
    class: String,
    title: String,
    platform: String,
    description: String,
    cves: Vec<(String, String)>,
    tests: Vec<String>,
    /// A USN's id (`USN-6663-3`), from its reference.
    notice: Option<String>,
    /// The notice's severity as Canonical writes it (`High`), when the definition has one.
    severity: String,
}

fn attr(e: &quick_xml::events::BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok().map(|v| v.into_owned()))
}

/// The release a platform names: `Debian GNU/Linux 12` is `Debian:12`.
fn ecosystem_of(platform: &str) -> Option<String> {
    let release = platform.rsplit(' ').next()?;
    (platform.starts_with("Debian") && release.chars().all(|c| c.is_ascii_digit()) && !release.is_empty())
        .then(|| format!("Debian:{release}"))
}

/// The release an Ubuntu `inventory` definition checks for: `Check that Ubuntu 24.04 LTS
/// (noble) is installed.` is `Ubuntu:24.04`.
fn ubuntu_release(title: &str) -> Option<String> {
    let release = title.split("Ubuntu ").nth(1)?.split_whitespace().next()?;
    (release.contains('.') && release.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .then(|| format!("Ubuntu:{release}"))
}

/// Canonical's priority words, as Harbor's severities: as `Severity::from_word` reads them,
/// but for two of Canonical's own meanings: `negligible` still counts as a vulnerability (Low,
/// as Trivy has it), and a notice's `None` says no priority was given (Unknown).
fn ubuntu_severity(word: &str) -> Severity {
    match word.trim().to_ascii_lowercase().as_str() {
        "negligible" => Severity::Low,
        "none" => Severity::Unknown,
        _ => Severity::from_word(word).unwrap_or(Severity::Unknown),
    }
}

/// What a walk of the file has gathered so far.
#[derive(Default)]
struct Parsed {
    definitions: Vec<Definition>,
    current: Option<Definition>,
    /// Test id -> (object id, state id); object id -> package; state id -> (operation, evr).
    tests: HashMap<String, (String, String)>,
    objects: HashMap<String, String>,
    /// Object id -> the variable listing its package names (Ubuntu's objects).
    object_variables: HashMap<String, String>,
    /// Variable id -> its values; the `constant_variable` being read.
    variables: HashMap<String, Vec<String>>,
    variable: Option<String>,
    states: HashMap<String, (String, String)>,
    /// The test, object and state being read.
    test: Option<(String, String, String)>,
    object: Option<String>,
    state: Option<(String, String)>,
    saw_root: bool,
}

impl Parsed {
    /// Opens element `name` (its attributes in `e`).
    fn start(&mut self, name: &str, e: &quick_xml::events::BytesStart<'_>) {
        match name {
            "oval_definitions" => self.saw_root = true,
            "definition" => {
                self.current = Some(Definition {
                    id: attr(e, "id").unwrap_or_default(),
                    class: attr(e, "class").unwrap_or_default(),
                    ..Default::default()
                })
            }
            "reference" => {
                if let Some(d) = self.current.as_mut()
                    && let Some(id) = attr(e, "ref_id")
                {
                    match attr(e, "source").as_deref() {
                        Some("CVE") => d.cves.push((id, attr(e, "ref_url").unwrap_or_default())),
                        Some("USN") => d.notice = Some(id),
                        _ => {}
                    }
                }
            }
            "name" => {
                if let (Some(object), Some(variable)) = (self.object.as_ref(), attr(e, "var_ref")) {
                    self.object_variables.insert(object.clone(), variable);
                }
            }
            "constant_variable" => self.variable = attr(e, "id"),
            "criterion" => {
                if let (Some(d), Some(t)) = (self.current.as_mut(), attr(e, "test_ref")) {
                    d.tests.push(t);
                }
            }
            "dpkginfo_test" => self.test = Some((attr(e, "id").unwrap_or_default(), String::new(), String::new())),
            "object" => {
                if let (Some(t), Some(r)) = (self.test.as_mut(), attr(e, "object_ref")) {
                    t.1 = r;
                }
            }
            "state" => {
                if let (Some(t), Some(r)) = (self.test.as_mut(), attr(e, "state_ref")) {
                    t.2 = r;
                }
            }
            "dpkginfo_object" => self.object = attr(e, "id"),
            "dpkginfo_state" => self.state = attr(e, "id").map(|id| (id, String::new())),
            "evr" => {
                if let Some(s) = self.state.as_mut() {
                    s.1 = attr(e, "operation").unwrap_or_default();
                }
            }
            _ => {}
        }
    }

    /// Closes element `name`, whose text was `text`, storing what it held.
    fn end(&mut self, name: &str, text: &str) {
        match name {
            "definition" => {
                if let Some(d) = self.current.take() {
                    self.definitions.push(d);
                }
            }
            "title" | "platform" | "description" | "severity" => {
                if let Some(d) = self.current.as_mut() {
                    let field = match name {
                        "title" => &mut d.title,
                        "platform" => &mut d.platform,
                        "severity" => &mut d.severity,
                        _ => &mut d.description,
                    };
                    *field = text.to_string();
                }
            }
            "dpkginfo_test" => {
                if let Some((id, object, state)) = self.test.take() {
                    self.tests.insert(id, (object, state));
                }
            }
            "name" => {
                if let Some(id) = self.object.as_ref()
                    && !text.trim().is_empty()
                {
                    self.objects.insert(id.clone(), text.trim().to_string());
                }
            }
            "value" => {
                if let Some(id) = self.variable.as_ref() {
                    self.variables.entry(id.clone()).or_default().push(text.trim().to_string());
                }
            }
            "constant_variable" => self.variable = None,
            "dpkginfo_object" => self.object = None,
            "evr" => {
                if let Some((id, operation)) = self.state.as_ref() {
                    self.states.insert(id.clone(), (operation.clone(), text.trim().to_string()));
                }
            }
            "dpkginfo_state" => self.state = None,
            _ => {}
        }
    }

    /// The advisories the definitions make.
    fn advisories(self) -> Vec<Advisory> {
        let mut advisories = Vec::new();
        let ubuntu = self.definitions.iter().filter(|d| d.class == "inventory").find_map(|d| ubuntu_release(&d.title));
        for d in &self.definitions {
            // Debian files a vulnerability per CVE; Canonical a patch per notice.
            let (ecosystem, id, aliases, severity) = match (d.class.as_str(), &ubuntu, &d.notice) {
                ("vulnerability", _, _) => {
                    let Some(ecosystem) = ecosystem_of(d.platform.trim()) else { continue };
                    let id = match d.cves.first() {
                        Some((cve, _)) => cve.clone(),
                        None => d.title.split_whitespace().next().unwrap_or(&d.id).to_string(),
                    };
                    (ecosystem, id, Vec::new(), Severity::Unknown)
                }
                ("patch", Some(ecosystem), Some(notice)) => {
                    let cves = d.cves.iter().map(|(cve, _)| cve.clone()).collect();
                    (ecosystem.clone(), notice.clone(), cves, ubuntu_severity(&d.severity))
                }
                _ => continue,
            };
            let mut affected = Vec::new();
            for t in &d.tests {
                let Some((object, state)) = self.tests.get(t) else { continue };
                let Some((operation, evr)) = self.states.get(state) else { continue };
                let packages: Vec<&String> = match (self.objects.get(object), self.object_variables.get(object)) {
                    (Some(package), _) => vec![package],
                    (None, Some(variable)) => self.variables.get(variable).into_iter().flatten().collect(),
                    (None, None) => continue,
                };
                // "less than 0": not affected in this release.
                let fixed = evr.strip_prefix("0:").unwrap_or(evr);
                if operation != "less than" || fixed == "0" {
                    continue;
                }
                for package in packages {
                    affected.push(Affected {
                        ecosystem: ecosystem.clone(),
                        name: package.clone(),
                        ranges: vec![Range {
                            kind: RangeKind::Ecosystem,
                            events: vec![RangeEvent::Introduced("0".into()), RangeEvent::Fixed(fixed.to_string())],
                        }],
                        versions: Vec::new(),
                    });
                }
            }
            if affected.is_empty() {
                continue;
            }
            advisories.push(Advisory {
                id,
                aliases,
                summary: d.title.trim().to_string(),
                details: d.description.trim().to_string(),
                severity,
                cvss: Vec::new(),
                cwe_ids: Vec::new(),
                references: d.cves.iter().map(|(_, url)| url.clone()).filter(|u| !u.is_empty()).collect(),
                published: None,
                modified: None,
                withdrawn: false,
                informational: false,
                affected,
            });
        }
        advisories
    }
}

/// Reads a Debian or Ubuntu OVAL file.
pub fn from_reader(reader: impl BufRead) -> Result<Vec<Advisory>, OvalError> {
    let mut xml = quick_xml::Reader::from_reader(reader);
    let mut buf = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut parsed = Parsed::default();
    loop {
        let event = xml.read_event_into(&mut buf).map_err(|e| OvalError::Xml(e.to_string()))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = e.local_name().as_ref().to_string();
                text.clear();
                parsed.start(&name, e);
                if matches!(event, Event::Empty(_)) {
                    parsed.end(&name, "");
                } else {
                    path.push(name);
                }
            }
            Event::Text(ref t) => text.push_str(&t.xml10_content()),
            Event::CData(ref t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(ref r) => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    text.push(c);
                } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(&r.xml10_content()) {
                    text.push_str(s);
                }
            }
            Event::End(_) => {
                let Some(name) = path.pop() else {
                    return Err(OvalError::Xml("an end tag without its start".into()));
                };
                parsed.end(&name, &text);
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !parsed.saw_root {
        return Err(OvalError::Invalid("no <oval_definitions> element".into()));
    }
    Ok(parsed.advisories())
}
