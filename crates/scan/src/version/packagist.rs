//! Packagist's order: PHP's `version_compare` (which Composer's comparator calls), with a
//! leading `v` dropped. Versions are canonicalized (`-`, `_`, `+` and other marks but `#`,
//! the number's own stand-in, become `.`, and a `.` goes between digits and letters), then
//! compared piece by piece: numbers as numbers (of any length, where PHP's would overflow),
//! words by their rank (`dev` < `alpha` = `a` < `beta` = `b` < `RC` = `rc` < a number <
//! `pl` = `p`, anything else first).

use std::cmp::Ordering;

fn canonical(version: &str) -> String {
    let v = version.trim();
    let v = v.strip_prefix(['v', 'V']).unwrap_or(v);
    let mut out = String::with_capacity(v.len() + 4);
    let mut chars = v.chars();
    let Some(first) = chars.next() else { return out };
    out.push(first);
    let mut last = first;
    let digit = |c: char| c.is_ascii_digit();
    let letter = |c: char| !c.is_ascii_digit() && c != '.';
    for c in chars {
        let dot = |out: &mut String| {
            if !out.ends_with('.') {
                out.push('.');
            }
        };
        if matches!(c, '-' | '_' | '+') {
            dot(&mut out);
        } else if (letter(last) && digit(c)) || (digit(last) && letter(c)) {
            dot(&mut out);
            out.push(c);
        } else if !c.is_ascii_alphanumeric() && c != '.' && c != '#' {
            dot(&mut out);
        } else {
            out.push(c);
        }
        last = c;
    }
    out
}

/// The rank of a word piece (PHP's `compare_special_version_forms`: the first form the piece
/// starts with).
fn rank(piece: &str) -> i32 {
    const FORMS: [(&str, i32); 10] = [
        ("dev", 0),
        ("alpha", 1),
        ("a", 1),
        ("beta", 2),
        ("b", 2),
        ("RC", 3),
        ("rc", 3),
        ("#", 4),
        ("pl", 5),
        ("p", 5),
    ];
    FORMS.iter().find(|(form, _)| piece.starts_with(form)).map_or(-1, |(_, r)| *r)
}

/// A number's stand-in when a number meets a word.
const NUMBER: &str = "#N#";

fn compare_pieces(a: &str, b: &str) -> Ordering {
    let number = |s: &str| s.starts_with(|c: char| c.is_ascii_digit());
    match (number(a), number(b)) {
        (true, true) => {
            // PHP's strtol: the leading digits.
            let digits = |s: &str| s[..s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len())].to_string();
            super::compare_digits(&digits(a), &digits(b))
        }
        (false, false) => rank(a).cmp(&rank(b)),
        (true, false) => rank(NUMBER).cmp(&rank(b)),
        (false, true) => rank(a).cmp(&rank(NUMBER)),
    }
}

fn compare_canonical(a: &str, b: &str) -> Ordering {
    let (x, y): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    for (p, q) in x.iter().zip(y.iter()) {
        match compare_pieces(p, q) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    // The longer goes on: with a number it is greater; with a word, that rest is compared
    // with a number.
    let rest = |longer: &[&str], shorter: usize| longer[shorter..].join(".");
    match x.len().cmp(&y.len()) {
        Ordering::Equal => Ordering::Equal,
        Ordering::Greater => {
            let tail = rest(&x, y.len());
            if tail.starts_with(|c: char| c.is_ascii_digit()) {
                Ordering::Greater
            } else {
                compare_canonical(&tail, NUMBER)
            }
        }
        Ordering::Less => {
            let tail = rest(&y, x.len());
            if tail.starts_with(|c: char| c.is_ascii_digit()) {
                Ordering::Less
            } else {
                compare_canonical(NUMBER, &tail)
            }
        }
    }
}

pub(super) fn compare(a: &str, b: &str) -> Ordering {
    compare_canonical(&canonical(a), &canonical(b))
}
