//! The vulnerability database's tables: feeds, their advisories (the scanner's JSON, which
//! this layer stores and does not read), and the packages each advisory names.

use sqlx::Row;

use crate::{Db, DbError, now_millis};

/// Package names per advisory query (bound as one JSON parameter).
const PACKAGE_BATCH: usize = 500;

/// One advisory to store: its feed, its id, its body, and the (ecosystem family, package)
/// pairs it is looked up by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvisoryRow {
    pub feed: String,
    pub advisory_id: String,
    pub body: String,
    pub packages: Vec<(String, String)>,
}

/// A feed as imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRow {
    pub name: String,
    /// Where it was imported from (a path or a URL).
    pub source: String,
    pub advisories: i64,
    /// When (ms since the epoch).
    pub imported_at: i64,
}

impl Db {
    /// Replaces the feeds `advisories` belong to, whole, with them: in one transaction, so a
    /// scan reads either the old feed or the new one. `source` is recorded for each feed.
    #[tracing::instrument(level = "info", skip_all, fields(advisories = advisories.len()))]
    pub async fn replace_vuln_feeds(&self, source: &str, advisories: &[AdvisoryRow]) -> Result<Vec<FeedRow>, DbError> {
        let mut feeds: Vec<(&str, i64)> = Vec::new();
        for a in advisories {
            match feeds.iter_mut().find(|(name, _)| *name == a.feed) {
                Some((_, n)) => *n += 1,
                None => feeds.push((&a.feed, 1)),
            }
        }
        let now = now_millis();
        let mut w = self.begin_write().await?;
        for (name, count) in &feeds {
            // The feed's row goes, and its advisories and their packages with it (cascade).
            sqlx::query("DELETE FROM vuln_feeds WHERE name = $1").bind(*name).execute(&mut *w.tx).await?;
            sqlx::query("INSERT INTO vuln_feeds (name, source, advisories, imported_at) VALUES ($1, $2, $3, $4)")
                .bind(*name)
                .bind(source)
                .bind(*count)
                .bind(now)
                .execute(&mut *w.tx)
                .await?;
        }
        for a in advisories {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO vuln_advisories (feed, advisory_id, body) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(&a.feed)
            .bind(&a.advisory_id)
            .bind(&a.body)
            .fetch_one(&mut *w.tx)
            .await?;
            let mut packages = a.packages.clone();
            packages.sort();
            packages.dedup();
            for (family, package) in &packages {
                sqlx::query("INSERT INTO vuln_packages (family, package, advisory) VALUES ($1, $2, $3)")
                    .bind(family)
                    .bind(package)
                    .bind(id)
                    .execute(&mut *w.tx)
                    .await?;
            }
        }
        w.commit().await?;
        Ok(feeds
            .into_iter()
            .map(|(name, advisories)| FeedRow {
                name: name.to_string(),
                source: source.to_string(),
                advisories,
                imported_at: now,
            })
            .collect())
    }

    /// The bodies of the advisories filed under any of `packages` in ecosystem `family`: a
    /// query per family and batch of names, where a scan of a few hundred packages made one
    /// per package. An advisory naming several of them comes once per batch.
    pub async fn vuln_advisories_for_any(&self, family: &str, packages: &[&str]) -> Result<Vec<String>, DbError> {
        let mut bodies = Vec::new();
        for batch in packages.chunks(PACKAGE_BATCH) {
            let sql = format!(
                "SELECT a.body FROM vuln_advisories a WHERE a.id IN \
                 (SELECT p.advisory FROM vuln_packages p WHERE p.family = $1 AND p.package IN {}) ORDER BY a.id",
                crate::json_list(self.dialect, 2)
            );
            let found: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(family)
                .bind(crate::json_strings(batch))
                .fetch_all(&self.pool)
                .await?;
            bodies.extend(found);
        }
        Ok(bodies)
    }

    /// Every imported feed, by name.
    pub async fn vuln_feeds(&self) -> Result<Vec<FeedRow>, DbError> {
        let rows = sqlx::query("SELECT name, source, advisories, imported_at FROM vuln_feeds ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(FeedRow {
                    name: r.try_get(0)?,
                    source: r.try_get(1)?,
                    advisories: r.try_get(2)?,
                    imported_at: r.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }
}
