//! Python's version order: PEP 440 through `pep440_rs`; a version PEP 440 refuses orders as
//! `packaging` (before 22) ordered its `LegacyVersion`, before every PEP 440 version, since
//! old releases on PyPI and in advisories still carry such versions.

use std::cmp::Ordering;
use std::str::FromStr;

enum Parsed {
    Legacy(Vec<String>),
    Pep440(pep440_rs::Version),
}

fn parse(v: &str) -> Parsed {
    let v = v.trim();
    match pep440_rs::Version::from_str(v) {
        Ok(version) => Parsed::Pep440(version),
        Err(_) => Parsed::Legacy(legacy_key(v)),
    }
}

/// `packaging`'s `_legacy_cmpkey`: runs of digits (zero-padded to eight), of letters (marked
/// with `*`, some renamed), and `-` as `*final-`, trailing zeros of each numeric run dropped.
fn legacy_key(v: &str) -> Vec<String> {
    let lower = v.to_ascii_lowercase();
    let mut pieces: Vec<String> = Vec::new();
    let bytes = lower.as_bytes();
    let mut i = 0;
    let mut other = String::new();
    let flush = |other: &mut String, pieces: &mut Vec<String>| {
        if !other.is_empty() {
            pieces.push(std::mem::take(other));
        }
    };
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_digit() || c.is_ascii_lowercase() {
            flush(&mut other, &mut pieces);
            let start = i;
            let digit = c.is_ascii_digit();
            while i < bytes.len() && (if digit { bytes[i].is_ascii_digit() } else { bytes[i].is_ascii_lowercase() }) {
                i += 1;
            }
            pieces.push(lower[start..i].to_string());
        } else if c == b'.' || c == b'-' {
            flush(&mut other, &mut pieces);
            pieces.push((c as char).to_string());
            i += 1;
        } else {
            // What the pattern does not match stays as text of its own.
            let ch = lower[i..].chars().next().unwrap_or(' ');
            other.push(ch);
            i += ch.len_utf8();
        }
    }
    flush(&mut other, &mut pieces);
    let mut parts: Vec<String> = Vec::new();
    let mut push = |part: String| {
        if part.starts_with('*') {
            if part.as_str() < "*final" {
                while parts.last().is_some_and(|p| p == "*final-") {
                    parts.pop();
                }
            }
            while parts.last().is_some_and(|p| p == "00000000") {
                parts.pop();
            }
        }
        parts.push(part);
    };
    for piece in pieces {
        let piece = match piece.as_str() {
            "pre" | "preview" | "rc" => "c".to_string(),
            "-" => "final-".to_string(),
            "dev" => "@".to_string(),
            _ => piece,
        };
        if piece.is_empty() || piece == "." {
            continue;
        }
        if piece.starts_with(|c: char| c.is_ascii_digit()) {
            push(format!("{piece:0>8}"));
        } else {
            push(format!("*{piece}"));
        }
    }
    push("*final".to_string());
    parts
}

pub(super) fn compare(a: &str, b: &str) -> Ordering {
    match (parse(a), parse(b)) {
        (Parsed::Pep440(x), Parsed::Pep440(y)) => x.cmp(&y),
        (Parsed::Legacy(x), Parsed::Legacy(y)) => x.cmp(&y),
        (Parsed::Legacy(_), Parsed::Pep440(_)) => Ordering::Less,
        (Parsed::Pep440(_), Parsed::Legacy(_)) => Ordering::Greater,
    }
}
