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
}

/// Which kind of file `path` (relative, no leading `/`) is, if a scan reads it.
pub fn kind_of(path: &str) -> Option<FileKind> {
    match path {
        "etc/os-release" | "usr/lib/os-release" => Some(FileKind::OsRelease),
        "var/lib/dpkg/status" => Some(FileKind::DpkgStatus),
        "lib/apk/db/installed" => Some(FileKind::ApkInstalled),
        p if p.starts_with("var/lib/dpkg/status.d/") && !p.ends_with(".md5sums") && !p.ends_with('/') => {
            Some(FileKind::DpkgStatus)
        }
        _ => None,
    }
}

/// What one layer holds that a scan needs: the files it reads, and what the layer deletes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerFiles {
    /// Kept files by path, as text (every file a scan reads is text; bytes that are not
    /// UTF-8 are replaced, as the parsers would).
    pub files: BTreeMap<String, String>,
    /// Paths this layer removes from the layers below (`.wh.<name>`), or replaces with
    /// something that is not a kept file (a directory, a link).
    pub removed: Vec<String>,
    /// Directories whose contents below this layer are hidden (`.wh..wh..opq`).
    pub opaque: Vec<String>,
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
    let mut found = LayerFiles::default();
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
        let Some(_) = kind_of(&path) else { continue };
        if !entry.header().entry_type().is_file() {
            // A directory or link where a package database was: what was below is gone.
            found.removed.push(path);
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
        found.removed.retain(|r| *r != path);
        found.files.insert(path, String::from_utf8_lossy(&bytes).into_owned());
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
