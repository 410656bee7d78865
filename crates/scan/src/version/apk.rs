//! Alpine's apk version ordering, as apk-tools 2's `version.c` walks it (the apk of every
//! Alpine 3.x image, and what generated the fixture comparisons): a token at a time (digits, a
//! letter, `_suffix` and its number, `-r` revision), each token's kind ordered before its
//! value.

use std::cmp::Ordering;

/// The token kinds in apk's order (their order decides when the values ran out equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Invalid,
    DigitOrZero,
    Digit,
    Letter,
    Suffix,
    SuffixNumber,
    Revision,
    End,
}

const PRE_SUFFIXES: [&str; 4] = ["alpha", "beta", "pre", "rc"];
const POST_SUFFIXES: [&str; 5] = ["cvs", "svn", "git", "hg", "p"];

/// A token's value: a number of any length, negative where apk marks leading zeros or a
/// pre-release suffix.
#[derive(Debug, Clone)]
struct Value {
    negative: bool,
    digits: String,
}

impl Value {
    fn int(n: i64) -> Value {
        Value { negative: n < 0, digits: n.unsigned_abs().to_string() }
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Value) -> Ordering {
        let zero = |d: &str| d.bytes().all(|c| c == b'0');
        match (self.negative && !zero(&self.digits), other.negative && !zero(&other.digits)) {
            (false, false) => super::compare_digits(&self.digits, &other.digits),
            (true, true) => super::compare_digits(&other.digits, &self.digits),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
        }
    }
}

// By number, not by spelling: "02" is 2.
impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Value) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

struct Tokens<'a> {
    rest: &'a [u8],
    kind: Kind,
}

impl Tokens<'_> {
    /// Reads the separator before the next token and decides its kind.
    fn next_kind(&mut self) {
        let mut n = Kind::Invalid;
        match self.rest.first() {
            None | Some(0) => n = Kind::End,
            Some(&c) if matches!(self.kind, Kind::Digit | Kind::DigitOrZero) && c.is_ascii_lowercase() => {
                n = Kind::Letter
            }
            Some(&c) if self.kind == Kind::Letter && c.is_ascii_digit() => n = Kind::Digit,
            Some(&c) if self.kind == Kind::Suffix && c.is_ascii_digit() => n = Kind::SuffixNumber,
            Some(&c) => {
                match c {
                    b'.' => n = Kind::DigitOrZero,
                    b'_' => n = Kind::Suffix,
                    b'-' if self.rest.get(1) == Some(&b'r') => {
                        n = Kind::Revision;
                        self.rest = &self.rest[1..];
                    }
                    _ => {}
                }
                self.rest = &self.rest[1..];
            }
        }
        // A kind may only follow one before it in the order (or these three pairs).
        if n < self.kind
            && !((n == Kind::DigitOrZero && self.kind == Kind::Digit)
                || (n == Kind::Suffix && self.kind == Kind::SuffixNumber)
                || (n == Kind::Digit && self.kind == Kind::Letter))
        {
            n = Kind::Invalid;
        }
        self.kind = n;
    }

    /// The value of the token of the current kind, then moves to the next.
    fn value(&mut self) -> Value {
        if self.rest.is_empty() {
            self.kind = Kind::End;
            return Value::int(0);
        }
        let mut i = 0;
        let mut next = None;
        let value = match self.kind {
            Kind::DigitOrZero if self.rest[0] == b'0' => {
                // Leading zeros after a dot: compared as a fraction would be (fewer zeros
                // greater), through a negative count.
                while i < self.rest.len() && self.rest[i] == b'0' {
                    i += 1;
                }
                next = Some(Kind::Digit);
                Value::int(-(i as i64))
            }
            Kind::DigitOrZero | Kind::Digit | Kind::SuffixNumber | Kind::Revision => {
                while i < self.rest.len() && self.rest[i].is_ascii_digit() {
                    i += 1;
                }
                let digits = String::from_utf8_lossy(&self.rest[..i]).into_owned();
                Value { negative: false, digits: if digits.is_empty() { "0".into() } else { digits } }
            }
            Kind::Letter => {
                i = 1;
                Value::int(i64::from(self.rest[0]))
            }
            Kind::Suffix => {
                let pre = PRE_SUFFIXES.iter().position(|s| self.rest.starts_with(s.as_bytes()));
                let post = POST_SUFFIXES.iter().position(|s| self.rest.starts_with(s.as_bytes()));
                if let Some(n) = pre {
                    i = PRE_SUFFIXES[n].len();
                    Value::int(n as i64 - PRE_SUFFIXES.len() as i64)
                } else if let Some(n) = post {
                    i = POST_SUFFIXES[n].len();
                    Value::int(n as i64)
                } else {
                    self.kind = Kind::Invalid;
                    return Value::int(-1);
                }
            }
            Kind::Invalid | Kind::End => {
                self.kind = Kind::Invalid;
                return Value::int(-1);
            }
        };
        self.rest = &self.rest[i..];
        if self.rest.is_empty() {
            self.kind = Kind::End;
        } else if let Some(n) = next {
            self.kind = n;
        } else {
            self.next_kind();
        }
        value
    }
}

/// `None` when either is empty.
pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut x = Tokens { rest: a.as_bytes(), kind: Kind::Digit };
    let mut y = Tokens { rest: b.as_bytes(), kind: Kind::Digit };
    let (mut xv, mut yv) = (Value::int(0), Value::int(0));
    while x.kind == y.kind && x.kind != Kind::End && x.kind != Kind::Invalid && xv == yv {
        xv = x.value();
        yv = y.value();
    }
    match xv.cmp(&yv) {
        Ordering::Equal => {}
        other => return Some(other),
    }
    if x.kind == y.kind {
        return Some(Ordering::Equal);
    }
    // Equal so far: the version that goes on is greater, unless it goes on with a
    // pre-release suffix.
    let pre_release = |rest: &[u8]| (Tokens { rest, kind: Kind::Suffix }).value() < Value::int(0);
    if x.kind == Kind::Suffix && pre_release(x.rest) {
        return Some(Ordering::Less);
    }
    if y.kind == Kind::Suffix && pre_release(y.rest) {
        return Some(Ordering::Greater);
    }
    Some(y.kind.cmp(&x.kind))
}
