//! Maven's version order, as `ComparableVersion` (maven-artifact) builds and compares it,
//! which is what generated the fixture comparisons (it departs from the POM reference's prose
//! in places, such as `1.5.9.RC1 < 1.5.9-RC0`). A version is a list of items: numbers,
//! qualifiers, and sub-lists that each `-` or change between digits and letters opens; null
//! items (0, "", `ga`, `final`, `release`, an empty list) at a list's end are dropped.

use std::cmp::Ordering;

#[derive(Debug)]
enum Item {
    Number(String),
    Qualifier(String),
    List(Vec<Item>),
}

/// Known qualifiers in order; a release ("") sits between `snapshot` and `sp`.
const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
const RELEASE: usize = 5;

fn qualifier(text: &str, followed_by_digit: bool) -> Item {
    let text = match text {
        "a" if followed_by_digit => "alpha",
        "b" if followed_by_digit => "beta",
        "m" if followed_by_digit => "milestone",
        "ga" | "final" | "release" => "",
        "cr" => "rc",
        other => other,
    };
    Item::Qualifier(text.to_string())
}

/// The comparable form of a qualifier: its rank among the known ones, or after all of them
/// and then by its text.
fn rank(q: &str) -> (usize, &str) {
    match QUALIFIERS.iter().position(|k| *k == q) {
        Some(i) => (i, ""),
        None => (QUALIFIERS.len(), q),
    }
}

impl Item {
    fn is_null(&self) -> bool {
        match self {
            Item::Number(n) => n.bytes().all(|c| c == b'0'),
            Item::Qualifier(q) => q.is_empty(),
            Item::List(items) => items.is_empty(),
        }
    }
}

/// Drops trailing nulls, stepping back over sub-lists (as `ListItem.normalize`).
fn normalize(items: &mut Vec<Item>) {
    let mut i = items.len();
    while i > 0 {
        i -= 1;
        if items[i].is_null() {
            items.remove(i);
        } else if !matches!(items[i], Item::List(_)) {
            break;
        }
    }
}

fn parse(version: &str) -> Vec<Item> {
    let v = version.trim().to_ascii_lowercase();
    let bytes = v.as_bytes();
    // The open lists, innermost last; each is attached to its parent once closed.
    let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
    let mut is_digit = false;
    let mut start = 0;
    let item = |text: &str, digit: bool| if digit { Item::Number(text.to_string()) } else { qualifier(text, false) };
    for (i, &c) in bytes.iter().enumerate() {
        let Some(list) = stack.last_mut() else { break };
        if c == b'.' || c == b'-' {
            list.push(if i == start { Item::Number("0".into()) } else { item(&v[start..i], is_digit) });
            start = i + 1;
            if c == b'-' {
                stack.push(Vec::new());
            }
        } else if c.is_ascii_digit() {
            if !is_digit && i > start {
                list.push(qualifier(&v[start..i], true));
                start = i;
                stack.push(Vec::new());
            }
            is_digit = true;
        } else {
            if is_digit && i > start {
                list.push(Item::Number(v[start..i].to_string()));
                start = i;
                stack.push(Vec::new());
            }
            is_digit = false;
        }
    }
    if bytes.len() > start
        && let Some(list) = stack.last_mut()
    {
        list.push(item(&v[start..], is_digit));
    }
    // Close the lists from the innermost out, each normalized before its parent holds it.
    while stack.len() > 1 {
        let Some(mut inner) = stack.pop() else { break };
        normalize(&mut inner);
        if let Some(parent) = stack.last_mut() {
            parent.push(Item::List(inner));
        }
    }
    let mut items = stack.pop().unwrap_or_default();
    normalize(&mut items);
    items
}

/// `a` against `b`, where `None` is a missing item (past the end of a shorter list).
fn compare_items(a: Option<&Item>, b: Option<&Item>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(b)) => compare_items(Some(b), None).reverse(),
        (Some(Item::Number(n)), None) => {
            if n.bytes().all(|c| c == b'0') {
                Ordering::Equal
            } else {
                Ordering::Greater
            }
        }
        (Some(Item::Qualifier(q)), None) => rank(q).cmp(&(RELEASE, "")),
        (Some(Item::List(items)), None) => compare_items(items.first(), None),
        (Some(Item::Number(x)), Some(Item::Number(y))) => super::compare_digits(x, y),
        (Some(Item::Number(_)), Some(_)) => Ordering::Greater,
        (Some(Item::Qualifier(x)), Some(Item::Qualifier(y))) => rank(x).cmp(&rank(y)),
        (Some(Item::Qualifier(_)), Some(_)) => Ordering::Less,
        (Some(Item::List(_)), Some(Item::Number(_))) => Ordering::Less,
        (Some(Item::List(_)), Some(Item::Qualifier(_))) => Ordering::Greater,
        (Some(Item::List(x)), Some(Item::List(y))) => compare_lists(x, y),
    }
}

fn compare_lists(a: &[Item], b: &[Item]) -> Ordering {
    for i in 0..a.len().max(b.len()) {
        match compare_items(a.get(i), b.get(i)) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    Ordering::Equal
}

pub(super) fn compare(a: &str, b: &str) -> Ordering {
    compare_lists(&parse(a), &parse(b))
}
