//! What an image holds, from its stacked layers: the operating system, and every installed
//! package with the ecosystem its advisories are filed under and the layer that installed it.

use std::collections::HashMap;

use crate::langpkg;
use crate::layers::{FileKind, Stacked};
use crate::os::{Os, parse_os_release};
use crate::pkgdb::{Package, PkgDbError, parse_apk_installed, parse_dpkg_status};

/// One package found in the image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Installed {
    /// The OSV ecosystem its advisories are filed under (`Debian:12`, `Alpine:v3.20`); empty
    /// when the system is one no feed covers.
    pub ecosystem: String,
    pub package: Package,
    /// The index (bottom first) of the layer that installed this version.
    pub layer: usize,
    /// The database that lists it.
    pub path: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Inventory {
    pub os: Option<Os>,
    pub packages: Vec<Installed>,
}

fn parse(kind: FileKind, path: &str, text: &str) -> Result<Vec<Package>, PkgDbError> {
    match kind {
        FileKind::DpkgStatus => parse_dpkg_status(text),
        FileKind::ApkInstalled => parse_apk_installed(text),
        FileKind::CargoLock => langpkg::parse_cargo_lock(text),
        FileKind::PythonMetadata => langpkg::parse_python_metadata(text),
        FileKind::PackageLock => langpkg::parse_package_lock(text),
        FileKind::PackageJson => langpkg::parse_package_json(text),
        FileKind::ComposerLock => langpkg::parse_composer_lock(text),
        FileKind::Gemspec => langpkg::parse_gemspec(text),
        FileKind::DepsJson => langpkg::parse_deps_json(text),
        FileKind::GoBinary => langpkg::parse_go_binary(text),
        FileKind::OsRelease => {
            Err(PkgDbError { database: "os-release", reason: format!("{path} is no package database") })
        }
    }
}

/// The inventory of a stacked image; a package database that cannot be read fails it.
pub fn inventory(stacked: &Stacked) -> Result<Inventory, PkgDbError> {
    // `/etc/os-release` wins over `/usr/lib/os-release`, as systemd reads them.
    let os = ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|p| stacked.files.get(*p))
        .and_then(|f| parse_os_release(&f.text));
    let ecosystem = os.as_ref().and_then(Os::ecosystem).unwrap_or_default();
    let mut packages = Vec::new();
    for (path, file) in &stacked.files {
        let Some(kind) = FileKind::of(path, &file.text) else { continue };
        if kind == FileKind::OsRelease {
            continue;
        }
        let found = parse(kind, path, &file.text)
            .map_err(|e| PkgDbError { database: e.database, reason: format!("{path}: {}", e.reason) })?;
        let ecosystem = kind.language_ecosystem().map_or_else(|| ecosystem.clone(), str::to_string);
        // Each (name, version) is traced back through the database's earlier states to the
        // first layer from which it stayed.
        let mut since: HashMap<(String, String), usize> = HashMap::new();
        for state in stacked.history.get(path).into_iter().flatten() {
            let Some(state) = state else {
                since.clear();
                continue;
            };
            let present: Vec<(String, String)> =
                parse(kind, path, &state.text).unwrap_or_default().into_iter().map(|p| (p.name, p.version)).collect();
            since.retain(|key, _| present.contains(key));
            for key in present {
                since.entry(key).or_insert(state.layer);
            }
        }
        for package in found {
            let layer = since.get(&(package.name.clone(), package.version.clone())).copied().unwrap_or(file.layer);
            packages.push(Installed { ecosystem: ecosystem.clone(), package, layer, path: path.clone() });
        }
    }
    Ok(Inventory { os, packages })
}
