//! RubyGems' `Gem::Version` ordering: segments of digits or letters, `-` read as `.pre.`,
//! trailing zeros of the release and of the pre-release part dropped, and a letter segment
//! before any number (a pre-release sorts first).

use std::cmp::Ordering;

use super::compare_digits;

#[derive(PartialEq, Eq)]
enum Segment<'a> {
    Number(&'a str),
    Text(String),
}

fn is_zero(s: &Segment<'_>) -> bool {
    matches!(s, Segment::Number(n) if n.bytes().all(|c| c == b'0'))
}

/// `None` for what Gem::Version refuses (it accepts digits, letters, `.` and `-` only).
fn canonical(version: &str) -> Option<Vec<Segment<'_>>> {
    let v = version.trim();
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-') {
        return None;
    }
    let mut segments = Vec::new();
    let bytes = v.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        if bytes[i].is_ascii_digit() {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            segments.push(Segment::Number(&v[start..i]));
        } else if bytes[i].is_ascii_alphabetic() {
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            segments.push(Segment::Text(v[start..i].to_string()));
        } else {
            // `-` is `.pre.`: a pre-release marker.
            if bytes[i] == b'-' {
                segments.push(Segment::Text("pre".to_string()));
            }
            i += 1;
        }
    }
    // Trailing zeros of the numeric release, and of what follows the first letters, go.
    let first_text = segments.iter().position(|s| matches!(s, Segment::Text(_))).unwrap_or(segments.len());
    let mut pre = segments.split_off(first_text);
    while segments.last().is_some_and(is_zero) {
        segments.pop();
    }
    while pre.last().is_some_and(is_zero) {
        pre.pop();
    }
    segments.extend(pre);
    Some(segments)
}

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (canonical(a)?, canonical(b)?);
    let zero = Segment::Number("0");
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).unwrap_or(&zero), b.get(i).unwrap_or(&zero));
        let order = match (x, y) {
            (Segment::Number(p), Segment::Number(q)) => compare_digits(p, q),
            (Segment::Text(p), Segment::Text(q)) => p.cmp(q),
            (Segment::Text(_), Segment::Number(_)) => Ordering::Less,
            (Segment::Number(_), Segment::Text(_)) => Ordering::Greater,
        };
        if order != Ordering::Equal {
            return Some(order);
        }
    }
    Some(Ordering::Equal)
}
