//! Debian's OVAL definitions (`oval-definitions-<release>.xml`, as www.debian.org/security/oval/
//! publishes them): one definition per (CVE, source package), whose `dpkginfo` test says
//! "affected while earlier than" a version. Read as a stream (the files are tens of MiB) into
//! advisories as OSV would write them, scoped to the release the definitions' platform names.

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

/// What a walk of the file has gathered so far.
#[derive(Default)]
struct Parsed {
    definitions: Vec<Definition>,
    current: Option<Definition>,
    /// Test id -> (object id, state id); object id -> package; state id -> (operation, evr).
    tests: HashMap<String, (String, String)>,
    objects: HashMap<String, String>,
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
                    && attr(e, "source").as_deref() == Some("CVE")
                    && let Some(id) = attr(e, "ref_id")
                {
                    d.cves.push((id, attr(e, "ref_url").unwrap_or_default()));
                }
            }
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
            "title" | "platform" | "description" => {
                if let Some(d) = self.current.as_mut() {
                    let field = match name {
                        "title" => &mut d.title,
                        "platform" => &mut d.platform,
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
                if let Some(id) = self.object.as_ref() {
                    self.objects.insert(id.clone(), text.trim().to_string());
                }
            }
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
        for d in self.definitions {
            if d.class != "vulnerability" {
                continue;
            }
            let Some(ecosystem) = ecosystem_of(d.platform.trim()) else { continue };
            let id = match d.cves.first() {
                Some((cve, _)) => cve.clone(),
                None => d.title.split_whitespace().next().unwrap_or(&d.id).to_string(),
            };
            let mut affected = Vec::new();
            for t in &d.tests {
                let Some((object, state)) = self.tests.get(t) else { continue };
                let (Some(package), Some((operation, evr))) = (self.objects.get(object), self.states.get(state)) else {
                    continue;
                };
                // "less than 0": not affected in this release.
                let fixed = evr.strip_prefix("0:").unwrap_or(evr);
                if operation != "less than" || fixed == "0" {
                    continue;
                }
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
            if affected.is_empty() {
                continue;
            }
            advisories.push(Advisory {
                id,
                aliases: Vec::new(),
                summary: d.title.trim().to_string(),
                details: d.description.trim().to_string(),
                severity: Severity::Unknown,
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

/// Reads a Debian OVAL file.
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
