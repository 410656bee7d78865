//! Go binaries' build information, as `go version -m` reads it: the Go release the binary
//! was built with (its standard library, `stdlib` in Go's vulnerability database) and the
//! modules linked into it, with their versions.
//!
//! The linker writes a blob that starts with the magic `\xff Go buildinf:` into the binary's
//! data. Go's `debug/buildinfo` finds it through the executable's section table, which ELF
//! keeps at the end of the file; a layer is a stream, so this searches the bytes instead
//! (SIMD `memmem`, as fast as the layer decompresses) and checks each candidate's header,
//! since a binary that links `debug/buildinfo` also holds the magic as a string. Binaries of
//! Go 1.18 and later write the strings inline (flag bit 2); older ones point at them, which
//! needs the segment table, and are passed over.

use std::io::Read;

use memchr::memmem;

/// The blob's magic.
const MAGIC: &[u8] = b"\xff Go buildinf:";
/// The header before the strings: magic, pointer size, flags, padding.
const HEADER: usize = 32;
/// Flag bit 2: the version and module info follow the header inline (Go 1.18+).
const INLINE_STRINGS: u8 = 0x2;
/// No build info is near this (a binary of a thousand modules writes ~100 KiB).
const MAX_INFO: usize = 1 << 20;
/// Module info is framed by 16 bytes on each side (`cmd/go`'s `infoStart`/`infoEnd`).
const SENTINEL: usize = 16;
/// Read this much of a binary at a time.
const CHUNK: usize = 1 << 20;
/// What a kept Go binary's text starts with: it tells the inventory what the file is, which
/// its path cannot (any executable may be one). No text file a scan reads starts with NUL.
pub const KEPT_PREFIX: &str = "\0go-buildinfo\n";

/// A binary's build information.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// `go1.22.5`.
    pub go_version: String,
    /// The module information, one `path`, `mod`, `dep`, `=>` or `build` line each.
    pub modules: String,
}

impl BuildInfo {
    /// The text a layer keeps for the binary ([`KEPT_PREFIX`], `go\t<version>`, the module lines).
    pub fn kept_text(&self) -> String {
        format!("{KEPT_PREFIX}go\t{}\n{}", self.go_version, self.modules)
    }
}

enum Parsed {
    Found(BuildInfo),
    Invalid,
    NeedMore,
}

fn uvarint(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= ((b & 0x7f) as usize).checked_shl(7 * i as u32)?;
        if b < 0x80 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The build info at the start of `bytes` (which begins with the magic); `eof` says no more
/// bytes follow.
fn parse(bytes: &[u8], eof: bool) -> Parsed {
    let short = if eof || bytes.len() >= MAX_INFO { Parsed::Invalid } else { Parsed::NeedMore };
    if bytes.len() < HEADER {
        return short;
    }
    let (pointer_size, flags) = (bytes[14], bytes[15]);
    if !matches!(pointer_size, 4 | 8) || flags & INLINE_STRINGS == 0 {
        return Parsed::Invalid;
    }
    let mut at = HEADER;
    let mut strings = Vec::with_capacity(2);
    for _ in 0..2 {
        let Some((len, used)) = uvarint(&bytes[at..]) else { return short };
        if len > MAX_INFO {
            return Parsed::Invalid;
        }
        at += used;
        let Some(s) = bytes.get(at..at + len) else { return short };
        strings.push(s);
        at += len;
    }
    let (version, info) = (strings[0], strings[1]);
    let Ok(version) = std::str::from_utf8(version) else { return Parsed::Invalid };
    if !version.starts_with("go") || version.len() > 64 {
        return Parsed::Invalid;
    }
    let modules = if info.len() > 2 * SENTINEL && info[info.len() - SENTINEL - 1] == b'\n' {
        String::from_utf8_lossy(&info[SENTINEL..info.len() - SENTINEL]).into_owned()
    } else {
        String::new()
    };
    Parsed::Found(BuildInfo { go_version: version.to_string(), modules })
}

/// Reads `input` until `buf` is full or the input ends; how many bytes were read.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The build information of the executable read from `input`, if it is a Go binary (of Go
/// 1.18 or later). Memory holds a chunk of the file at a time.
pub fn find(mut input: impl Read) -> std::io::Result<Option<BuildInfo>> {
    let finder = memmem::Finder::new(MAGIC);
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + MAGIC.len());
    let mut from = 0;
    let mut eof = false;
    loop {
        if !eof {
            let old = buf.len();
            buf.resize(old + CHUNK, 0);
            let n = fill(&mut input, &mut buf[old..])?;
            buf.truncate(old + n);
            eof = n < CHUNK;
        }
        let mut need_more = None;
        while let Some(found) = finder.find(&buf[from..]) {
            let at = from + found;
            match parse(&buf[at..], eof) {
                Parsed::Found(info) => return Ok(Some(info)),
                Parsed::Invalid => from = at + 1,
                Parsed::NeedMore => {
                    need_more = Some(at);
                    break;
                }
            }
        }
        if eof {
            return Ok(None);
        }
        // Keep a candidate that needs more bytes, or the tail a magic may straddle.
        let keep_from = need_more.unwrap_or_else(|| buf.len().saturating_sub(MAGIC.len() - 1).max(from));
        buf.drain(..keep_from);
        from = 0;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A build info blob as Go 1.18+ writes it.
    pub(crate) fn blob(version: &str, modules: &str) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend([8, INLINE_STRINGS]);
        out.resize(HEADER, 0);
        let info: Vec<u8> = [&[0x30u8; SENTINEL][..], modules.as_bytes(), &[0x31u8; SENTINEL][..]].concat();
        for s in [version.as_bytes(), &info[..]] {
            let mut len = s.len();
            loop {
                let byte = (len & 0x7f) as u8;
                len >>= 7;
                out.push(if len > 0 { byte | 0x80 } else { byte });
                if len == 0 {
                    break;
                }
            }
            out.extend_from_slice(s);
        }
        out
    }

    const MODULES: &str = "path\texample.com/cmd/app\nmod\texample.com\t(devel)\t\n\
        dep\tgolang.org/x/net\tv0.17.0\th1:abc=\nbuild\t-compiler=gc\n";

    #[test]
    fn the_blob_is_found_across_chunks_past_a_decoy() {
        // The magic as a string in rodata (a binary linking debug/buildinfo) comes first; the
        // real blob straddles a chunk boundary.
        let mut binary = b"\x7fELF".to_vec();
        binary.extend(MAGIC);
        binary.extend(b"not a header at all, just text after the string constant");
        binary.resize(CHUNK - 40, 0xff);
        binary.extend(blob("go1.21.4", MODULES));
        binary.resize(binary.len() + 3 * CHUNK, 0);
        let info = find(&binary[..]).unwrap().unwrap();
        assert_eq!(info.go_version, "go1.21.4");
        assert_eq!(info.modules, MODULES);
        assert!(info.kept_text().starts_with("\0go-buildinfo\ngo\tgo1.21.4\npath\t"));
    }

    #[test]
    fn other_files_and_old_binaries_have_none() {
        assert_eq!(find(&b"\x7fELF plain C program"[..]).unwrap(), None);
        let mut old = blob("go1.16", MODULES);
        old[15] = 0; // pointers, not inline strings
        assert_eq!(find(&old[..]).unwrap(), None);
        let truncated = blob("go1.21.4", MODULES);
        assert_eq!(find(&truncated[..truncated.len() - 5]).unwrap(), None);
    }
}
