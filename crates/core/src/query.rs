//! Harbor's listing query language: `q=k=v,k=~v,k=[min~max],k={a b},k=(a b)` and
//! `sort=k,-k`, parsed into what `db` compiles against each listing's fields.

pub use berth_db::{ListQuery, Match};

/// Splits on `sep` where it is outside quotes and brackets.
fn split_outside(s: &str, sep: char) -> Vec<&str> {
    let (mut out, mut depth, mut quoted, mut start) = (Vec::new(), 0i32, false, 0);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '[' | '{' | '(' if !quoted => depth += 1,
            ']' | '}' | ')' if !quoted => depth -= 1,
            c if c == sep && !quoted && depth == 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v).to_string()
}

/// The space-separated values of a `{...}` or `(...)` list; quoted values may hold spaces.
fn list_values(inner: &str) -> Vec<String> {
    split_outside(inner, ' ').into_iter().filter(|v| !v.trim().is_empty()).map(unquote).collect()
}

fn term(kv: &str) -> Result<(String, Match), String> {
    let (key, value) = kv.split_once('=').ok_or_else(|| format!("query term {kv:?} is not key=value"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("query term {kv:?} has no key"));
    }
    let value = value.trim();
    let m = if let Some(v) = value.strip_prefix('~') {
        Match::Fuzzy(unquote(v))
    } else if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        let (lo, hi) = inner.split_once('~').ok_or_else(|| format!("range {value:?} needs min~max"))?;
        let bound = |b: &str| Some(unquote(b)).filter(|b| !b.is_empty());
        Match::Range(bound(lo), bound(hi))
    } else if let Some(inner) = value.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
        Match::AnyOf(list_values(inner))
    } else if let Some(inner) = value.strip_prefix('(').and_then(|v| v.strip_suffix(')')) {
        Match::AllOf(list_values(inner))
    } else {
        Match::Exact(unquote(value))
    };
    Ok((key.to_string(), m))
}

/// Parses `q` and `sort` (either may be absent or empty).
pub fn parse(q: Option<&str>, sort: Option<&str>) -> Result<ListQuery, String> {
    let mut query = ListQuery::default();
    if let Some(q) = q.filter(|q| !q.trim().is_empty()) {
        for kv in split_outside(q, ',') {
            if !kv.trim().is_empty() {
                query.terms.push(term(kv)?);
            }
        }
    }
    if let Some(sort) = sort {
        for key in sort.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            match key.strip_prefix('-') {
                Some(k) => query.sort.push((k.to_string(), true)),
                None => query.sort.push((key.to_string(), false)),
            }
        }
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let q = parse(
            Some(r#"name=~lib,public=true,creation_time=[2020-04-09 02:36:00~],id={1 2 3},tags=(a "b c"),x="p,q""#),
            Some("name,-creation_time"),
        )
        .unwrap();
        assert_eq!(
            q.terms,
            vec![
                ("name".into(), Match::Fuzzy("lib".into())),
                ("public".into(), Match::Exact("true".into())),
                ("creation_time".into(), Match::Range(Some("2020-04-09 02:36:00".into()), None)),
                ("id".into(), Match::AnyOf(vec!["1".into(), "2".into(), "3".into()])),
                ("tags".into(), Match::AllOf(vec!["a".into(), "b c".into()])),
                ("x".into(), Match::Exact("p,q".into())),
            ]
        );
        assert_eq!(q.sort, vec![("name".into(), false), ("creation_time".into(), true)]);
    }

    #[test]
    fn refuses_malformed_terms() {
        for q in ["name", "=x", "t=[1 2]"] {
            assert!(parse(Some(q), None).is_err(), "{q}");
        }
        assert_eq!(parse(Some(""), Some("")).unwrap(), ListQuery::default());
    }
}
