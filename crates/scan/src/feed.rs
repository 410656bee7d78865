//! Reading a feed as its upstream publishes it: a directory, a `.tar.gz` of one, a `.zip`
//! (osv.dev's `all.zip`), or one OVAL file (Debian's, `.xml` or `.xml.gz`), walked file by file, each advisory handed on as it is read (memory
//! holds one record at a time).

use std::io::Read;
use std::path::Path;

use crate::advisory::Advisory;

/// No advisory file is near this; a larger one is refused rather than read into memory.
const MAX_RECORD_BYTES: u64 = 16 << 20;

/// What a walk found besides the advisories it handed on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WalkReport {
    pub advisories: usize,
    /// Files that are not advisories (READMEs, licences, indexes).
    pub skipped: usize,
    /// Records that claim a format and break it: `path: reason`.
    pub errors: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: not a directory, a .tar.gz, a .tgz, a .zip, or an OVAL .xml or .xml.gz")]
    UnknownKind(String),
    #[error("{0}: {1}")]
    Zip(String, zip::result::ZipError),
    #[error("{0}: {1}")]
    Oval(String, crate::oval::OvalError),
}

/// Reads every advisory under `path` (a directory, a `.tar.gz`/`.tgz` or a `.zip`), calling
/// `each` with it.
pub fn walk(path: &Path, mut each: impl FnMut(Advisory)) -> Result<WalkReport, FeedError> {
    let shown = path.display().to_string();
    let io = |e: std::io::Error| FeedError::Io(shown.clone(), e);
    let mut report = WalkReport::default();
    let mut take = |name: &str, bytes: &[u8], report: &mut WalkReport| match read_file(name, bytes) {
        Ok(advisories) if advisories.is_empty() => report.skipped += 1,
        Ok(advisories) => {
            report.advisories += advisories.len();
            advisories.into_iter().for_each(&mut each);
        }
        Err(e) => report.errors.push(format!("{name}: {e}")),
    };
    if path.is_dir() {
        let mut stack = vec![path.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let mut entries: Vec<_> = std::fs::read_dir(&dir).map_err(io)?.collect::<Result<_, _>>().map_err(io)?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let kind = entry.file_type().map_err(io)?;
                let p = entry.path();
                if kind.is_dir() {
                    stack.push(p);
                } else if kind.is_file() {
                    let name = p.strip_prefix(path).unwrap_or(&p).display().to_string();
                    let file = std::fs::File::open(&p).map_err(io)?;
                    let mut bytes = Vec::new();
                    file.take(MAX_RECORD_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
                    if bytes.len() as u64 > MAX_RECORD_BYTES {
                        report.errors.push(format!("{name}: larger than {MAX_RECORD_BYTES} bytes"));
                        continue;
                    }
                    take(&name, &bytes, &mut report);
                }
            }
        }
        return Ok(report);
    }
    let lower = shown.to_ascii_lowercase();
    if lower.ends_with(".xml") || lower.ends_with(".xml.gz") {
        // One OVAL file (Debian publishes one per release), read as a stream: it is far
        // larger than a record.
        let file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
        let advisories = if lower.ends_with(".gz") {
            crate::oval::from_reader(std::io::BufReader::new(flate2::read::MultiGzDecoder::new(file)))
        } else {
            crate::oval::from_reader(file)
        }
        .map_err(|e| FeedError::Oval(shown.clone(), e))?;
        report.advisories += advisories.len();
        advisories.into_iter().for_each(&mut each);
        return Ok(report);
    }
    if lower.ends_with(".zip") {
        let zip_error = |e| FeedError::Zip(shown.clone(), e);
        let file = std::fs::File::open(path).map_err(io)?;
        let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(zip_error)?;
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i).map_err(zip_error)?;
            if !entry.is_file() {
                continue;
            }
            let name = entry.name().map_err(zip_error)?.to_string();
            // The size a zip states may lie: what is read is bounded, not what is stated.
            let mut bytes = Vec::new();
            (&mut entry).take(MAX_RECORD_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
            if bytes.len() as u64 > MAX_RECORD_BYTES {
                report.errors.push(format!("{name}: larger than {MAX_RECORD_BYTES} bytes"));
                continue;
            }
            take(&name, &bytes, &mut report);
        }
        return Ok(report);
    }
    if !(lower.ends_with(".tar.gz") || lower.ends_with(".tgz")) {
        return Err(FeedError::UnknownKind(shown));
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(io)?.display().to_string();
        if entry.size() > MAX_RECORD_BYTES {
            report.errors.push(format!("{name}: larger than {MAX_RECORD_BYTES} bytes"));
            continue;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        (&mut entry).take(MAX_RECORD_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
        take(&name, &bytes, &mut report);
    }
    Ok(report)
}

/// The advisories of one file of a feed, by its name and content: OSV in JSON or YAML, an
/// Alpine secdb file in either, or the Debian security tracker's DSA or DLA list; anything
/// else holds none.
fn read_file(name: &str, bytes: &[u8]) -> Result<Vec<Advisory>, String> {
    if crate::dsa::is_list(name) {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        return crate::dsa::parse(text);
    }
    let lower = name.to_ascii_lowercase();
    let value: serde_json::Value = if lower.ends_with(".json") {
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?
    } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        serde_saphyr::from_str(text).map_err(|e| format!("not YAML: {e}"))?
    } else {
        return Ok(Vec::new());
    };
    if crate::secdb::looks_like_secdb(&value) {
        return crate::secdb::from_json(value).map_err(|e| format!("not Alpine's secdb: {e}"));
    }
    Ok(crate::osv::from_value(value).map_err(|e| e.to_string())?.into_iter().collect())
}
