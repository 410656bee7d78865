//! Language packages as their tools record them in an image: Rust's `Cargo.lock`, Python's
//! `*.dist-info/METADATA` and `*.egg-info/PKG-INFO`, npm's `package-lock.json` and the
//! `package.json` of each installed module, PHP's `composer.lock`, Ruby's installed
//! gemspecs, and .NET's `*.deps.json`.
//!
//! Each file is read by its own rule; a file that breaks its format is an error (the scan
//! says which), a package entry without a name or version is passed over.

use crate::pkgdb::{Package, PkgDbError};

fn package(name: &str, version: &str) -> Package {
    Package {
        name: name.to_string(),
        version: version.to_string(),
        source_name: None,
        source_version: None,
        architecture: None,
        licenses: Vec::new(),
    }
}

fn error(database: &'static str, reason: impl Into<String>) -> PkgDbError {
    PkgDbError { database, reason: reason.into() }
}

/// `Cargo.lock`: its `[[package]]` tables from a registry (path and git dependencies are not
/// on crates.io). Read line by line: the file is machine-written, one `key = "value"` a line,
/// which spares a TOML parser in the build.
pub fn parse_cargo_lock(text: &str) -> Result<Vec<Package>, PkgDbError> {
    let mut packages = Vec::new();
    let mut current: Option<(String, String, String)> = None;
    let mut finish = |current: &mut Option<(String, String, String)>| {
        if let Some((name, version, source)) = current.take()
            && source.starts_with("registry+")
            && !name.is_empty()
            && !version.is_empty()
        {
            packages.push(package(&name, &version));
        }
    };
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            finish(&mut current);
            if line == "[[package]]" {
                current = Some(Default::default());
            }
            continue;
        }
        let Some(fields) = current.as_mut() else { continue };
        let Some((key, value)) = line.split_once('=') else { continue };
        let value = value.trim();
        let unquoted = value.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
        match (key.trim(), unquoted) {
            ("name", Some(v)) => fields.0 = v.to_string(),
            ("version", Some(v)) => fields.1 = v.to_string(),
            ("source", Some(v)) => fields.2 = v.to_string(),
            ("name" | "version" | "source", None) => {
                return Err(error("Cargo.lock", format!("a value that is not a string: {line:?}")));
            }
            _ => {}
        }
    }
    finish(&mut current);
    Ok(packages)
}

/// Python's core metadata (`METADATA`, `PKG-INFO`): the `Name` and `Version` headers.
pub fn parse_python_metadata(text: &str) -> Result<Vec<Package>, PkgDbError> {
    let (mut name, mut version) = (None, None);
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if let Some((key, value)) = line.split_once(':') {
            match key.trim().to_ascii_lowercase().as_str() {
                "name" if name.is_none() => name = Some(value.trim().to_string()),
                "version" if version.is_none() => version = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    match (name, version) {
        (Some(n), Some(v)) if !n.is_empty() && !v.is_empty() => Ok(vec![package(&n, &v)]),
        _ => Err(error("Python metadata", "no Name or no Version header")),
    }
}

fn json(database: &'static str, text: &str) -> Result<serde_json::Value, PkgDbError> {
    serde_json::from_str(text).map_err(|e| error(database, format!("not JSON: {e}")))
}

fn str_of<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(|x| x.as_str()).filter(|s| !s.is_empty())
}

/// npm's `package-lock.json`: lockfile v2 and v3 list every installed path under `packages`
/// (`node_modules/a/node_modules/b`); v1 nests `dependencies`.
pub fn parse_package_lock(text: &str) -> Result<Vec<Package>, PkgDbError> {
    let lock = json("package-lock.json", text)?;
    let mut packages = Vec::new();
    if let Some(installed) = lock.get("packages").and_then(|p| p.as_object()) {
        for (path, entry) in installed {
            // "" is the project itself; links point at a folder listed on its own.
            let Some((_, name)) = path.rsplit_once("node_modules/") else { continue };
            if entry.get("link").and_then(|l| l.as_bool()) == Some(true) {
                continue;
            }
            let name = str_of(entry, "name").unwrap_or(name);
            if let Some(version) = str_of(entry, "version") {
                packages.push(package(name, version));
            }
        }
        return Ok(packages);
    }
    fn walk(deps: &serde_json::Value, packages: &mut Vec<Package>) {
        let Some(deps) = deps.as_object() else { return };
        for (name, entry) in deps {
            if let Some(version) = str_of(entry, "version").filter(|v| !v.contains(':')) {
                packages.push(package(name, version));
            }
            if let Some(nested) = entry.get("dependencies") {
                walk(nested, packages);
            }
        }
    }
    if let Some(deps) = lock.get("dependencies") {
        walk(deps, &mut packages);
    }
    Ok(packages)
}

/// The `package.json` of an installed module (`node_modules/<name>/package.json`).
pub fn parse_package_json(text: &str) -> Result<Vec<Package>, PkgDbError> {
    let manifest = json("package.json", text)?;
    Ok(match (str_of(&manifest, "name"), str_of(&manifest, "version")) {
        (Some(name), Some(version)) => vec![package(name, version)],
        _ => Vec::new(),
    })
}

/// PHP's `composer.lock`: `packages` and `packages-dev`; versions lose Composer's `v`.
pub fn parse_composer_lock(text: &str) -> Result<Vec<Package>, PkgDbError> {
    let lock = json("composer.lock", text)?;
    let mut packages = Vec::new();
    for list in ["packages", "packages-dev"] {
        for entry in lock.get(list).and_then(|l| l.as_array()).into_iter().flatten() {
            if let (Some(name), Some(version)) = (str_of(entry, "name"), str_of(entry, "version")) {
                packages.push(package(name, version.strip_prefix('v').unwrap_or(version)));
            }
        }
    }
    Ok(packages)
}

/// An installed gem's specification (`specifications/<gem>.gemspec`, Ruby that RubyGems
/// wrote): its `.name = "..."` and `.version = "..."` assignments.
pub fn parse_gemspec(text: &str) -> Result<Vec<Package>, PkgDbError> {
    let quoted = |line: &str| -> Option<String> {
        let start = line.find(['"', '\''])?;
        let quote = line[start..].chars().next()?;
        let rest = &line[start + 1..];
        Some(rest[..rest.find(quote)?].to_string())
    };
    let (mut name, mut version) = (None, None);
    for line in text.lines() {
        let line = line.trim();
        let Some((left, right)) = line.split_once('=') else { continue };
        let left = left.trim();
        if left.ends_with(".name") && name.is_none() {
            name = quoted(right);
        } else if left.ends_with(".version") && version.is_none() {
            // `Gem::Version.new("1.2")` or `"1.2".freeze` or `"1.2"`.
            version = quoted(right);
        }
    }
    match (name, version) {
        (Some(n), Some(v)) if !n.is_empty() && !v.is_empty() => Ok(vec![package(&n, &v)]),
        _ => Err(error("gemspec", "no name or no version assignment")),
    }
}

/// .NET's `<app>.deps.json`: its `libraries` of type `package` (`Name/1.2.3`).
pub fn parse_deps_json(text: &str) -> Result<Vec<Package>, PkgDbError> {
    let deps = json("deps.json", text)?;
    let mut packages = Vec::new();
    for (key, entry) in deps.get("libraries").and_then(|l| l.as_object()).into_iter().flatten() {
        if str_of(entry, "type") != Some("package") {
            continue;
        }
        if let Some((name, version)) = key.split_once('/') {
            packages.push(package(name, version));
        }
    }
    Ok(packages)
}

/// A Go release as Go's vulnerability database writes its `stdlib` versions: `go1.21.4` is
/// `1.21.4`, `go1.21` is `1.21.0`, `go1.22rc1` is `1.22.0-rc.1`; an experiment suffix
/// (`go1.21.4 X:boringcrypto`) is dropped.
fn go_release(version: &str) -> Option<String> {
    let bare = version.split_whitespace().next()?.strip_prefix("go")?;
    let (release, pre) = match bare.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => (&bare[..at], Some(&bare[at..])),
        None => (bare, None),
    };
    let mut parts: Vec<&str> = release.split('.').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() || parts.len() > 3 || !parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    while parts.len() < 3 {
        parts.push("0");
    }
    let mut out = parts.join(".");
    if let Some(pre) = pre {
        let (letters, number) = pre.split_at(pre.find(|c: char| c.is_ascii_digit()).unwrap_or(pre.len()));
        out = if number.is_empty() { format!("{out}-{letters}") } else { format!("{out}-{letters}.{number}") };
    }
    Some(out)
}

/// A Go binary's build information (`gobinary::BuildInfo::kept_text`): the standard library
/// at the Go release it was built with (`stdlib`, as Go's vulnerability database names it),
/// the main module unless it is `(devel)`, and each linked module, a `=>` replacement taking
/// the place of the module before it. Module versions lose their `v`, as OSV writes them.
pub fn parse_go_binary(text: &str) -> Result<Vec<Package>, PkgDbError> {
    let body = text
        .strip_prefix(crate::gobinary::KEPT_PREFIX)
        .ok_or_else(|| error("Go build info", "not a Go binary's build information"))?;
    let mut packages = Vec::new();
    let module = |path: &str, version: &str| {
        let version = version.strip_prefix('v').unwrap_or(version);
        (!path.is_empty() && !version.is_empty() && version != "(devel)").then(|| package(path, version))
    };
    // Whether the line before added a module, which a `=>` line replaces.
    let mut added = false;
    for line in body.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["go", version] => {
                let release = go_release(version)
                    .ok_or_else(|| error("Go build info", format!("a Go version it cannot read: {version:?}")))?;
                packages.push(package("stdlib", &release));
                added = false;
            }
            ["mod" | "dep", path, version, ..] => {
                let found = module(path, version);
                added = found.is_some();
                packages.extend(found);
            }
            ["=>", replacement @ ..] => {
                if added {
                    packages.pop();
                }
                // A local directory (`=> ../fork`) has no version: no module of the proxy.
                if let [path, version, ..] = replacement {
                    packages.extend(module(path, version));
                }
                added = false;
            }
            _ => added = false,
        }
    }
    Ok(packages)
}
