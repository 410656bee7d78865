//! apk's `/lib/apk/db/installed`: a paragraph per package, one letter per field (`P` name,
//! `V` version, `o` origin, the source package advisories name; `A` architecture; `L` licence).

use super::{Package, PkgDbError};

pub fn parse_apk_installed(text: &str) -> Result<Vec<Package>, PkgDbError> {
    let mut packages = Vec::new();
    let mut current: Option<Package> = None;
    let finish = |current: &mut Option<Package>, packages: &mut Vec<Package>| -> Result<(), PkgDbError> {
        // A package without a version cannot be matched; apk would not have written one, and
        // other scanners pass over it too.
        if let Some(p) = current.take().filter(|p| !p.version.is_empty()) {
            packages.push(p);
        }
        Ok(())
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            finish(&mut current, &mut packages)?;
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(PkgDbError {
                database: "apk installed",
                reason: format!("a line that is not `X:value`: {line:?}"),
            });
        };
        let value = value.trim().to_string();
        match key {
            "P" => {
                finish(&mut current, &mut packages)?;
                current = Some(Package {
                    name: value,
                    version: String::new(),
                    source_name: None,
                    source_version: None,
                    architecture: None,
                    licenses: Vec::new(),
                });
            }
            _ => {
                let Some(p) = current.as_mut() else { continue };
                match key {
                    "V" => p.version = value,
                    "o" => p.source_name = Some(value).filter(|o| *o != p.name),
                    "A" => p.architecture = Some(value),
                    "L" => p.licenses = value.split_whitespace().map(str::to_string).collect(),
                    _ => {}
                }
            }
        }
    }
    finish(&mut current, &mut packages)?;
    Ok(packages)
}
