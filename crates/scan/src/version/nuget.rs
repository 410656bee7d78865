//! NuGet's version order: SemVer 2.0 widened to four numeric parts (a missing part is 0,
//! leading zeros are ignored), pre-release labels compared without regard to case, build
//! metadata ignored.

use std::cmp::Ordering;

use super::compare_digits;

struct Parsed {
    parts: Vec<String>,
    pre: Option<Vec<String>>,
}

fn parse(v: &str) -> Parsed {
    let v = v.trim();
    let v = v.split_once('+').map_or(v, |(head, _)| head);
    let (core, pre) = match v.split_once('-') {
        Some((core, pre)) => (core, Some(pre.split('.').map(str::to_ascii_lowercase).collect())),
        None => (v, None),
    };
    let mut parts: Vec<String> = core.split('.').map(str::to_string).collect();
    parts.resize(parts.len().max(4), "0".to_string());
    Parsed { parts, pre }
}

pub(super) fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (parse(a), parse(b));
    for i in 0..a.parts.len().max(b.parts.len()) {
        let (x, y) = (a.parts.get(i).map_or("0", String::as_str), b.parts.get(i).map_or("0", String::as_str));
        match compare_digits(x, y) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    match (&a.pre, &b.pre) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => {
            for i in 0..x.len().max(y.len()) {
                match (x.get(i), y.get(i)) {
                    (Some(p), Some(q)) => match super::compare_label(p, q) {
                        Ordering::Equal => {}
                        other => return other,
                    },
                    (None, Some(_)) => return Ordering::Less,
                    (Some(_), None) => return Ordering::Greater,
                    (None, None) => break,
                }
            }
            Ordering::Equal
        }
    }
}
