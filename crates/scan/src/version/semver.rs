//! SemVer 2.0 precedence as OSV applies it to crates.io, Go, npm and the rest: a leading `v`
//! is allowed (Go writes one), missing components are 0, anything after the third component
//! that does not start a pre-release is build metadata, and numbers have no size limit.

use std::cmp::Ordering;

use super::compare_digits;

struct Parsed<'a> {
    core: [&'a str; 3],
    pre: Option<&'a str>,
}

fn parse(v: &str) -> Parsed<'_> {
    let v = v.trim();
    let v = v.strip_prefix('v').unwrap_or(v);
    // Build metadata never counts.
    let v = v.split_once('+').map_or(v, |(head, _)| head);
    let mut core = ["0"; 3];
    let mut rest = v;
    for (i, slot) in core.iter_mut().enumerate() {
        if i > 0 {
            match rest.strip_prefix('.') {
                Some(r) if r.starts_with(|c: char| c.is_ascii_digit()) => rest = r,
                _ => break,
            }
        }
        let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        *slot = &rest[..end];
        rest = &rest[end..];
    }
    let pre = if let Some(pre) = rest.strip_prefix('-') {
        Some(pre)
    } else if rest.is_empty() || rest.starts_with('.') {
        // A fourth component and beyond: build metadata.
        None
    } else {
        // `1.2.3a`: not SemVer; what follows the numbers orders as a pre-release would.
        Some(rest)
    };
    Parsed { core, pre }
}

pub(super) fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (parse(a), parse(b));
    for (x, y) in a.core.iter().zip(b.core.iter()) {
        match compare_digits(x, y) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    match (a.pre, b.pre) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => {
            let (mut xs, mut ys) = (x.split('.'), y.split('.'));
            loop {
                match (xs.next(), ys.next()) {
                    (None, None) => return Ordering::Equal,
                    (None, Some(_)) => return Ordering::Less,
                    (Some(_), None) => return Ordering::Greater,
                    (Some(p), Some(q)) => match super::compare_label(p, q) {
                        Ordering::Equal => {}
                        other => return other,
                    },
                }
            }
        }
    }
}
