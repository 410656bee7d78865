//! Filtering and ordering of listings by Harbor's `q` and `sort` parameters, compiled to SQL
//! against a whitelist of fields per listing: only known keys reach the SQL text, and every
//! value is a bound argument.

use sqlx::Row;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;

use crate::{Db, DbError};

/// How a `q` term matches (Harbor's `k=v`, `k=~v`, `k=[a~b]`, `k={a b}`, `k=(a b)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Match {
    Exact(String),
    Fuzzy(String),
    /// Inclusive bounds; either may be open.
    Range(Option<String>, Option<String>),
    AnyOf(Vec<String>),
    AllOf(Vec<String>),
}

/// The parsed `q` and `sort` of one listing request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub terms: Vec<(String, Match)>,
    /// (field, descending).
    pub sort: Vec<(String, bool)>,
}

/// What a field's values are, for parsing them before they are bound.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Text,
    Int,
    /// A decimal number (a CVSS score).
    Float,
    Bool,
    /// Milliseconds since the epoch in the database; `2020-04-09 02:36:00` (UTC) in `q`.
    Time,
}

/// Where a field's value lives.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Source {
    /// A column expression of the listed row.
    Column(&'static str),
    /// Rows related to the listed one: `EXISTS (<from_where> AND <column> ...)`. `*` matches a
    /// row that has any, `nil` one that has none, as Harbor's `tags=*` and `tags=nil`.
    Related { from_where: &'static str, column: &'static str },
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    pub key: &'static str,
    pub source: Source,
    pub kind: Kind,
    pub sortable: bool,
}

#[derive(Clone, Debug)]
pub(crate) enum Arg {
    Int(i64),
    Float(f64),
    Text(String),
}

/// SQL text with `$n` placeholders and their arguments, numbered from a given start so that it
/// can follow a query's fixed arguments.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub condition: String,
    pub order: String,
    pub args: Vec<Arg>,
}

fn field<'a>(fields: &'a [Field], key: &str) -> Option<&'a Field> {
    fields.iter().find(|f| f.key.eq_ignore_ascii_case(key))
}

fn value(kind: Kind, key: &str, v: &str) -> Result<Arg, String> {
    let bad = || format!("invalid value {v:?} for query key {key}");
    match kind {
        Kind::Text => Ok(Arg::Text(v.to_string())),
        Kind::Int => v.trim().parse().map(Arg::Int).map_err(|_| bad()),
        Kind::Float => v.trim().parse().ok().filter(|f: &f64| f.is_finite()).map(Arg::Float).ok_or_else(bad),
        Kind::Bool => match v.trim() {
            "true" | "1" => Ok(Arg::Int(1)),
            "false" | "0" => Ok(Arg::Int(0)),
            _ => Err(bad()),
        },
        Kind::Time => parse_time(v.trim()).map(Arg::Int).ok_or_else(bad),
    }
}

/// `YYYY-MM-DD hh:mm:ss` (or with `T` and a trailing `Z`), UTC, to milliseconds.
fn parse_time(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = s.split_once([' ', 'T']).unwrap_or((s, "00:00:00"));
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next().unwrap_or(Some(0))?, t.next().unwrap_or(Some(0))?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant): no date crate for one conversion.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400) + hh * 3600 + mm * 60 + ss) * 1000)
}

struct Builder {
    next: usize,
    args: Vec<Arg>,
}

impl Builder {
    fn bind(&mut self, a: Arg) -> String {
        self.args.push(a);
        self.next += 1;
        format!("${}", self.next - 1)
    }

    /// `<column> <op> <value>` for one value.
    fn compare(&mut self, f: &Field, column: &str, m: &Match) -> Result<String, String> {
        Ok(match m {
            Match::Exact(v) => format!("{column} = {}", self.bind(value(f.kind, f.key, v)?)),
            Match::Fuzzy(v) => match f.kind {
                Kind::Text => format!("{column} LIKE {} ESCAPE '\\'", self.bind(Arg::Text(crate::like_contains(v)))),
                _ => return Err(format!("query key {} does not take a fuzzy match", f.key)),
            },
            Match::Range(lo, hi) => {
                let mut parts = Vec::new();
                if let Some(lo) = lo {
                    parts.push(format!("{column} >= {}", self.bind(value(f.kind, f.key, lo)?)));
                }
                if let Some(hi) = hi {
                    parts.push(format!("{column} <= {}", self.bind(value(f.kind, f.key, hi)?)));
                }
                if parts.is_empty() {
                    return Err(format!("the range for query key {} has no bound", f.key));
                }
                parts.join(" AND ")
            }
            Match::AnyOf(vs) => {
                if vs.is_empty() {
                    return Err(format!("query key {} has an empty list", f.key));
                }
                let mut bound = Vec::with_capacity(vs.len());
                for v in vs {
                    bound.push(self.bind(value(f.kind, f.key, v)?));
                }
                format!("{column} IN ({})", bound.join(", "))
            }
            // The caller splits AllOf into one exact condition per value.
            Match::AllOf(_) => return Err(format!("query key {} does not take a list here", f.key)),
        })
    }

    fn term(&mut self, f: &Field, m: &Match) -> Result<String, String> {
        match (f.source, m) {
            (_, Match::AllOf(vs)) => {
                if vs.is_empty() {
                    return Err(format!("query key {} has an empty list", f.key));
                }
                let mut parts = Vec::with_capacity(vs.len());
                for v in vs {
                    parts.push(self.term(f, &Match::Exact(v.clone()))?);
                }
                Ok(format!("({})", parts.join(" AND ")))
            }
            (Source::Column(column), m) => self.compare(f, column, m),
            (Source::Related { from_where, .. }, Match::Exact(v)) if v == "*" => Ok(format!("EXISTS ({from_where})")),
            (Source::Related { from_where, .. }, Match::Exact(v)) if v == "nil" => {
                Ok(format!("NOT EXISTS ({from_where})"))
            }
            (Source::Related { from_where, column }, m) => {
                Ok(format!("EXISTS ({from_where} AND {})", self.compare(f, column, m)?))
            }
        }
    }
}

/// Compiles `query` against `fields`; placeholders start at `$first`. `default_order` applies
/// when no sort is asked for; `tie_break` (a unique column) always ends the order so that paging
/// is stable, in the direction of the last sort key asked for, if any.
pub(crate) fn compile(
    fields: &[Field],
    query: &ListQuery,
    first: usize,
    default_order: &str,
    tie_break: &str,
) -> Result<Compiled, String> {
    let mut b = Builder { next: first, args: Vec::new() };
    let mut conditions = Vec::new();
    for (key, m) in &query.terms {
        let f = field(fields, key).ok_or_else(|| format!("unsupported query key {key:?}"))?;
        conditions.push(b.term(f, m)?);
    }
    let mut order = Vec::new();
    for (key, desc) in &query.sort {
        let f = field(fields, key).filter(|f| f.sortable).ok_or_else(|| format!("unsupported sort key {key:?}"))?;
        let Source::Column(column) = f.source else {
            return Err(format!("unsupported sort key {key:?}"));
        };
        // NULL sorts as the smallest value in both dialects (SQLite's rule; PostgreSQL's
        // default is the opposite).
        order.push(format!("{column} {}", if *desc { "DESC NULLS LAST" } else { "ASC NULLS FIRST" }));
    }
    match query.sort.last() {
        None => {
            order.push(default_order.to_string());
            order.push(tie_break.to_string());
        }
        // Ids grow with time: equal values of an asked-for sort (times with millisecond
        // resolution, say) follow in the same direction as the sort.
        Some((_, desc)) => {
            let column = tie_break.trim_end_matches(" DESC").trim_end_matches(" ASC");
            order.push(format!("{column} {}", if *desc { "DESC" } else { "ASC" }));
        }
    }
    Ok(Compiled {
        condition: if conditions.is_empty() { "1 = 1".to_string() } else { conditions.join(" AND ") },
        order: order.join(", "),
        args: b.args,
    })
}

fn bind_all<'q>(mut q: Query<'q, sqlx::Any, AnyArguments>, args: &[Arg]) -> Query<'q, sqlx::Any, AnyArguments> {
    for a in args {
        q = match a {
            Arg::Int(i) => q.bind(*i),
            Arg::Float(f) => q.bind(*f),
            Arg::Text(s) => q.bind(s.clone()),
        };
    }
    q
}

/// One listing: `SELECT <columns> <from>` where `from` holds the fixed conditions with
/// placeholders `$1..$n` for `fixed`, the fields `q` and `sort` may name, and the order.
pub(crate) struct Listing<'a> {
    pub columns: &'a str,
    pub from: &'a str,
    pub fixed: Vec<Arg>,
    pub fields: &'static [Field],
    pub default_order: &'a str,
    pub tie_break: &'a str,
}

impl Db {
    /// One page of a listing filtered and ordered by `query`, and the total of its matches.
    pub(crate) async fn list_page(
        &self,
        listing: &Listing<'_>,
        query: &ListQuery,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<AnyRow>, i64), DbError> {
        let c = compile(listing.fields, query, listing.fixed.len() + 1, listing.default_order, listing.tie_break)
            .map_err(DbError::InvalidQuery)?;
        let mut args = listing.fixed.clone();
        args.extend(c.args);
        let n = args.len();
        let sql = format!(
            "SELECT {} {} AND {} ORDER BY {} LIMIT ${} OFFSET ${}",
            listing.columns,
            listing.from,
            c.condition,
            c.order,
            n + 1,
            n + 2
        );
        let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &args)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        let count = format!("SELECT COUNT(*) {} AND {}", listing.from, c.condition);
        let total: i64 =
            bind_all(sqlx::query(sqlx::AssertSqlSafe(count)), &args).fetch_one(&self.pool).await?.try_get(0)?;
        Ok((rows, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[Field] = &[
        Field { key: "name", source: Source::Column("p.name"), kind: Kind::Text, sortable: true },
        Field { key: "id", source: Source::Column("p.id"), kind: Kind::Int, sortable: true },
        Field { key: "creation_time", source: Source::Column("p.created_at"), kind: Kind::Time, sortable: true },
        Field {
            key: "tags",
            source: Source::Related { from_where: "SELECT 1 FROM tags t WHERE t.m = p.id", column: "t.name" },
            kind: Kind::Text,
            sortable: false,
        },
    ];

    fn q(terms: Vec<(&str, Match)>, sort: Vec<(&str, bool)>) -> ListQuery {
        ListQuery {
            terms: terms.into_iter().map(|(k, m)| (k.to_string(), m)).collect(),
            sort: sort.into_iter().map(|(k, d)| (k.to_string(), d)).collect(),
        }
    }

    #[test]
    fn compiles_each_match_with_bound_values_only() {
        let c = compile(
            FIELDS,
            &q(
                vec![
                    ("name", Match::Fuzzy("a%b".into())),
                    ("id", Match::AnyOf(vec!["1".into(), "2".into()])),
                    ("creation_time", Match::Range(Some("2020-04-09 02:36:00".into()), None)),
                    ("tags", Match::Exact("nil".into())),
                ],
                vec![("name", true)],
            ),
            3,
            "p.name",
            "p.id",
        )
        .unwrap();
        assert_eq!(
            c.condition,
            "p.name LIKE $3 ESCAPE '\\' AND p.id IN ($4, $5) AND p.created_at >= $6 AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.m = p.id)"
        );
        assert_eq!(c.order, "p.name DESC NULLS LAST, p.id DESC", "ties follow the sort's direction");
        let ascending = compile(FIELDS, &q(vec![], vec![("name", false)]), 1, "p.name", "p.id DESC").unwrap();
        assert_eq!(ascending.order, "p.name ASC NULLS FIRST, p.id ASC");
        let unsorted = compile(FIELDS, &q(vec![], vec![]), 1, "p.name", "p.id DESC").unwrap();
        assert_eq!(unsorted.order, "p.name, p.id DESC");
        assert!(matches!(&c.args[0], Arg::Text(s) if s == "%a\\%b%"));
        assert!(matches!(c.args[3], Arg::Int(1_586_399_760_000)));
    }

    #[test]
    fn refuses_unknown_keys_bad_values_and_unsortable_fields() {
        for (terms, sort) in [
            (vec![("owner_id; DROP TABLE x", Match::Exact("1".into()))], vec![]),
            (vec![("id", Match::Exact("one".into()))], vec![]),
            (vec![("id", Match::Fuzzy("1".into()))], vec![]),
            (vec![("creation_time", Match::Exact("yesterday".into()))], vec![]),
            (vec![("name", Match::Range(None, None))], vec![]),
            (vec![], vec![("tags", false)]),
            (vec![], vec![("size", false)]),
        ] {
            assert!(compile(FIELDS, &q(terms, sort), 1, "p.name", "p.id").is_err());
        }
    }

    #[test]
    fn all_of_needs_every_value() {
        let c = compile(FIELDS, &q(vec![("tags", Match::AllOf(vec!["a".into(), "b".into()]))], vec![]), 1, "x", "y")
            .unwrap();
        assert_eq!(
            c.condition,
            "(EXISTS (SELECT 1 FROM tags t WHERE t.m = p.id AND t.name = $1) AND EXISTS (SELECT 1 FROM tags t WHERE t.m = p.id AND t.name = $2))"
        );
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(parse_time("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_time("2000-03-01T00:00:01Z"), Some(951_868_801_000));
        assert_eq!(parse_time("2020-13-01 00:00:00"), None);
    }
}
