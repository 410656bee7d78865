//! Layer analysis, as Trivy does it: each layer read once as a stream (gzip, zstd or plain
//! tar, told by its first bytes), keeping only the files a scan reads (package databases,
//! `os-release`, language manifests) and the deletions it makes (whiteouts); then the layers
//! stacked in order, so that what a later layer deletes or replaces is gone, and each package
//! is traced to the layer that put it there.
//!
//! A layer's [`LayerFiles`] depend on its bytes alone, so a caller may keep them by digest
//! and analyse a layer that several images share once.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

/// The most of one kept file read into memory: a dpkg status of thousands of packages is a
/// few MiB; anything past this is not a package database.
pub const MAX_KEPT_FILE: u64 = 64 << 20;
/// The most kept in all from one layer (a layer holding thousands of manifests).
pub const MAX_KEPT_TOTAL: u64 = 256 << 20;

/// What a scan reads from a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FileKind {
    OsRelease,
    DpkgStatus,
    ApkInstalled,
    CargoLock,
    PythonMetadata,
    PackageLock,
    PackageJson,
    ComposerLock,
    Gemspec,
    DepsJson,
    /// A Go binary's build information (`gobinary`), kept under the binary's path.
    GoBinary,
}

impl FileKind {
    /// The OSV ecosystem of a language's packages; `None` for the system's own.
    pub fn language_ecosystem(self) -> Option<&'static str> {
        match self {
            FileKind::OsRelease | FileKind::DpkgStatus | FileKind::ApkInstalled => None,
            FileKind::CargoLock => Some("crates.io"),
            FileKind::PythonMetadata => Some("PyPI"),
            FileKind::PackageLock | FileKind::PackageJson => Some("npm"),
            FileKind::ComposerLock => Some("Packagist"),
            FileKind::Gemspec => Some("RubyGems"),
            FileKind::DepsJson => Some("NuGet"),
            FileKind::GoBinary => Some("Go"),
        }
    }

    /// The kind of a kept file: by its path, or (for a Go binary, whose path says nothing)
    /// by what was kept of it.
    pub fn of(path: &str, kept: &str) -> Option<FileKind> {
        kind_of(path).or_else(|| kept.starts_with(crate::gobinary::KEPT_PREFIX).then_some(FileKind::GoBinary))
    }
}

/// What the layer analysis reads, as a number: kept layers analysed by an older version are
/// read again (2: Go binaries).
pub const ANALYZER_VERSION: u32 = 2;
/// Executables smaller than this are not looked into for Go's build information (the
/// smallest Go binary is over a megabyte).
const MIN_GO_BINARY: u64 = 512 << 10;

/// Which kind of file `path` (relative, no leading `/`) is, if a scan reads it.
pub fn kind_of(path: &str) -> Option<FileKind> {
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    let grandparent = parent.rsplit_once('/').map_or("", |(g, _)| g);
    match (path, name) {
        ("etc/os-release" | "usr/lib/os-release", _) => Some(FileKind::OsRelease),
        ("var/lib/dpkg/status", _) => Some(FileKind::DpkgStatus),
        ("lib/apk/db/installed", _) => Some(FileKind::ApkInstalled),
        _ if parent == "var/lib/dpkg/status.d" && !name.ends_with(".md5sums") && !name.is_empty() => {
            Some(FileKind::DpkgStatus)
        }
        (_, "Cargo.lock") => Some(FileKind::CargoLock),
        (_, "METADATA") if parent.ends_with(".dist-info") => Some(FileKind::PythonMetadata),
        (_, "PKG-INFO") if parent.ends_with(".egg-info") => Some(FileKind::PythonMetadata),
        // An egg's metadata as a single file.
        (_, n) if n.ends_with(".egg-info") => Some(FileKind::PythonMetadata),
        // A project's lock, not those that modules carry inside node_modules.
        (_, "package-lock.json") if !path.contains("node_modules/") => Some(FileKind::PackageLock),
        // node_modules/<name>/package.json or node_modules/@scope/<name>/package.json.
        (_, "package.json")
            if grandparent.ends_with("node_modules")
                || (grandparent.rsplit('/').next().is_some_and(|g| g.starts_with('@'))
                    && grandparent.rsplit_once('/').is_some_and(|(gg, _)| gg.ends_with("node_modules"))) =>
        {
            Some(FileKind::PackageJson)
        }
        (_, "composer.lock") => Some(FileKind::ComposerLock),
        (_, n) if n.ends_with(".gemspec") && parent.ends_with("specifications") => Some(FileKind::Gemspec),
        (_, n) if n.ends_with(".deps.json") => Some(FileKind::DepsJson),
        _ => None,
    }
}

/// What of a kept file a scan needs, when that is much less than the file: a module's
/// `package.json` shrinks to its name and version, Python's metadata to its headers (a
/// `node_modules` tree holds thousands of them).
fn reduce(kind: FileKind, text: String) -> String {
    match kind {
        FileKind::PackageJson => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => serde_json::json!({"name": v.get("name"), "version": v.get("version")}).to_string(),
            // Kept whole: the inventory will say what is wrong with it.
            Err(_) => text,
        },
        FileKind::PythonMetadata => match text.find("\n\n") {
            Some(end) => text[..end + 1].to_string(),
            None => text,
        },
        _ => text,
    }
}

/// What one layer holds that a scan needs: the files it reads, and what the layer deletes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerFiles {
    /// Kept files by path, as text (every file a scan reads is text; bytes that are not
    /// UTF-8 are replaced, as the parsers would).
    pub files: BTreeMap<String, String>,
    /// Paths this layer removes from the layers below, with all beneath them (`.wh.<name>`).
    pub removed: Vec<String>,
    /// Kept files of the layers below that this layer replaces with something else (a
    /// directory, a link): that path alone.
    #[serde(default)]
    pub replaced: Vec<String>,
    /// Directories whose contents below this layer are hidden (`.wh..wh..opq`).
    pub opaque: Vec<String>,
    /// The [`ANALYZER_VERSION`] that read it (0: before versions were recorded).
    #[serde(default)]
    pub analyzer: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("reading the layer: {0}")]
    Io(#[from] std::io::Error),
    #[error("{path}: {size} bytes, more than the {limit} a scan reads of one file")]
    FileTooLarge { path: String, size: u64, limit: u64 },
    #[error("the files a scan reads add up to more than {0} bytes in one layer")]
    TooMuch(u64),
}

/// The path of an entry as the image sees it: relative, without `./`, with `..` refused.
fn clean(path: &std::path::Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::Normal(p) => parts.push(p.to_str()?.to_string()),
            std::path::Component::CurDir | std::path::Component::RootDir => {}
            std::path::Component::ParentDir | std::path::Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

/// Reads a layer (compressed or not) and keeps what a scan needs.
pub fn read_layer(layer: impl Read) -> Result<LayerFiles, LayerError> {
    let mut input = BufReader::with_capacity(256 << 10, layer);
    let head = input.fill_buf()?;
    let decompressed: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(input))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(input)?)
    } else {
        Box::new(input)
    };
    let mut archive = tar::Archive::new(decompressed);
    let mut found = LayerFiles { analyzer: ANALYZER_VERSION, ..Default::default() };
    let mut kept = 0u64;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let Some(path) = clean(&entry.path()?) else { continue };
        let (dir, name) = path.rsplit_once('/').map_or(("", path.as_str()), |(d, n)| (d, n));
        if name == ".wh..wh..opq" {
            found.opaque.push(dir.to_string());
            continue;
        }
        if let Some(target) = name.strip_prefix(".wh.") {
            found.removed.push(if dir.is_empty() { target.to_string() } else { format!("{dir}/{target}") });
            continue;
        }
        let Some(kind) = kind_of(&path) else {
            let header = entry.header();
            let executable = header.mode().is_ok_and(|m| m & 0o111 != 0);
            if header.entry_type().is_file() && executable && entry.size() >= MIN_GO_BINARY {
                let mut magic = [0u8; 4];
                entry.read_exact(&mut magic)?;
                if &magic == b"\x7fELF" {
                    match crate::gobinary::find(&mut entry)? {
                        Some(info) => {
                            found.replaced.retain(|r| *r != path);
                            found.files.insert(path, info.kept_text());
                        }
                        // Another executable where a Go binary may have been below.
                        None => found.replaced.push(path),
                    }
                }
            }
            continue;
        };
        if !entry.header().entry_type().is_file() {
            // A directory or link where a kept file may be below: that file is gone (what is
            // beneath a directory merges, as overlays do).
            found.replaced.push(path);
            continue;
        }
        let size = entry.size();
        if size > MAX_KEPT_FILE {
            return Err(LayerError::FileTooLarge { path, size, limit: MAX_KEPT_FILE });
        }
        kept += size;
        if kept > MAX_KEPT_TOTAL {
            return Err(LayerError::TooMuch(MAX_KEPT_TOTAL));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        (&mut entry).take(MAX_KEPT_FILE + 1).read_to_end(&mut bytes)?;
        found.replaced.retain(|r| *r != path);
        found.files.insert(path, reduce(kind, String::from_utf8_lossy(&bytes).into_owned()));
    }
    Ok(found)
}

/// A kept file of the image as its layers stack up: its text and the index of the layer that
/// wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackedFile {
    pub layer: usize,
    pub text: String,
}

/// The kept files of the image whose layers are `layers`, bottom first, after each layer's
/// deletions; and every state each path went through, for tracing packages to layers.
#[derive(Debug, Default)]
pub struct Stacked {
    pub files: BTreeMap<String, StackedFile>,
    /// Per path, the layers that wrote it, in order (a deletion ends a run).
    pub history: BTreeMap<String, Vec<Option<StackedFile>>>,
}

fn under(path: &str, dir: &str) -> bool {
    dir.is_empty() || path == dir || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

/// Stacks the layers' kept files.
pub fn stack(layers: &[LayerFiles]) -> Stacked {
    let mut out = Stacked::default();
    for (index, layer) in layers.iter().enumerate() {
        let mut gone: Vec<String> = Vec::new();
        for dir in &layer.opaque {
            gone.extend(out.files.keys().filter(|p| under(p, dir) && *p != dir).cloned());
        }
        for removed in &layer.removed {
            gone.extend(out.files.keys().filter(|p| under(p, removed)).cloned());
        }
        gone.extend(layer.replaced.iter().filter(|p| out.files.contains_key(*p)).cloned());
        for path in gone {
            if out.files.remove(&path).is_some() {
                out.history.entry(path).or_default().push(None);
            }
        }
        for (path, text) in &layer.files {
            let file = StackedFile { layer: index, text: text.clone() };
            out.history.entry(path.clone()).or_default().push(Some(file.clone()));
            out.files.insert(path.clone(), file);
        }
    }
    out
}
