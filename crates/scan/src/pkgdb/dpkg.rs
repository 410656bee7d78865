//! dpkg's `/var/lib/dpkg/status` and the per-package files of `/var/lib/dpkg/status.d/`
//! (distroless images): RFC 822-style paragraphs.

use super::{Package, PkgDbError};

/// The installed packages of a status file. A paragraph with a `Status` counts only when it
/// says `installed` (a removed package leaves its configuration behind); `status.d` files
/// have none, and count.
pub fn parse_dpkg_status(text: &str) -> Result<Vec<Package>, PkgDbError> {
    let mut packages = Vec::new();
    for (n, paragraph) in text.split("\n\n").enumerate() {
        let mut fields: Vec<(&str, String)> = Vec::new();
        for line in paragraph.lines() {
            if line.starts_with([' ', '\t']) {
                // A continuation line belongs to the field before it (descriptions, conffiles).
                continue;
            }
            if line.trim().is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(PkgDbError {
                    database: "dpkg status",
                    reason: format!("paragraph {}: a line that is not `Field: value`: {line:?}", n + 1),
                });
            };
            fields.push((key.trim(), value.trim().to_string()));
        }
        let field = |name: &str| fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        let Some(name) = field("Package") else { continue };
        if let Some(status) = field("Status")
            && !status.split_whitespace().any(|w| w == "installed")
        {
            continue;
        }
        // A paragraph without a version cannot be matched: passed over, as apk's are.
        let Some(version) = field("Version") else { continue };
        // `Source: name` or `Source: name (version)`.
        let (source_name, source_version) = match field("Source") {
            Some(source) => match source.split_once('(') {
                Some((n, v)) => (Some(n.trim().to_string()), Some(v.trim_end_matches(')').trim().to_string())),
                None => (Some(source.trim().to_string()), None),
            },
            None => (None, None),
        };
        packages.push(Package {
            source_name: source_name.filter(|s| *s != name),
            name,
            version,
            source_version,
            architecture: field("Architecture"),
            licenses: Vec::new(),
        });
    }
    Ok(packages)
}
