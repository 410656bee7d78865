//! What garbage collection needs of the database, and what keeps it safe while pushes go on.
//!
//! The race a collection must not lose: it decides a digest is garbage, and meanwhile a push
//! writes or references the same digest. Three rules close it (ARCHITECTURE.md, "GC"):
//!
//! 1. A writer of bytes pins the digest first ([`Db::pin_blob`]), and removes the pin in the
//!    transaction that records what it wrote. A collection never condemns a pinned digest.
//! 2. A collection condemns digests in one transaction ([`Db::condemn`]): it rechecks that each
//!    is unreferenced, unpinned and old, deletes its row and leaves a tombstone; only then does
//!    it delete the bytes, and the tombstone goes last ([`Db::bury`]). A writer that finds a
//!    tombstone waits until it goes, so its bytes are never written before a deletion that
//!    would remove them.
//! 3. Deciding and referencing serialize per digest. On SQLite the writer's turn makes every
//!    writing transaction the only one. On PostgreSQL a writer takes a shared advisory lock on
//!    each digest it pins, links or references, before it reads; a collection *tries* the
//!    exclusive lock, skips what it cannot take (so it never waits, and never deadlocks), and
//!    rechecks in a statement after the lock, whose snapshot sees every writer that committed
//!    before.

use sqlx::Row;

use crate::{Db, DbError, Dialect, WriteTx, now_millis};
use crate::{json_list, json_strings};

/// How long a pin counts: one left by a process that died is ignored after this.
pub const PIN_LEASE_MS: i64 = 3_600_000;
/// How long a writer waits for a collection to finish deleting the digest it wants to write.
const TOMBSTONE_WAIT_MS: i64 = 30_000;
/// The namespace of our per-digest advisory locks (PostgreSQL's two-key form, apart from the
/// one-key locks the migrations take).
const DIGEST_LOCK_SPACE: i32 = 1700;

/// A digest pinned against collection while its bytes are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobPin {
    pub digest: String,
    id: i64,
}

/// A digest a collection condemned: its row (if any) is gone and a tombstone stands until its
/// bytes are deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condemned {
    pub digest: String,
    /// The size its blob row gave (0 when it had none).
    pub size: i64,
    /// Whether it was the bytes of a manifest that was deleted.
    pub manifest: bool,
}

/// The lock key of a digest: the first 32 bits of its hex (digests are uniformly random; a
/// collision only makes two digests wait for each other).
fn lock_key(digest: &str) -> i32 {
    let hex = digest.rsplit(':').next().unwrap_or(digest);
    match hex.get(..8).and_then(|h| u32::from_str_radix(h, 16).ok()) {
        Some(k) => k as i32,
        None => digest.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193)) as i32,
    }
}

fn lock_keys(digests: &[&str]) -> String {
    let mut keys: Vec<i32> = digests.iter().map(|d| lock_key(d)).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.iter().map(|k| format!("({k})")).collect::<Vec<_>>().join(", ")
}

impl WriteTx<'_> {
    /// Takes the shared per-digest locks of a writer (PostgreSQL; SQLite's turn already
    /// excludes a collection), waiting for a collection that holds one.
    pub(crate) async fn lock_digests_shared(&mut self, dialect: Dialect, digests: &[&str]) -> Result<(), DbError> {
        if dialect != Dialect::Postgres || digests.is_empty() {
            return Ok(());
        }
        // The keys are integers we computed, never client text.
        let sql = format!(
            "SELECT COUNT(pg_advisory_xact_lock_shared({DIGEST_LOCK_SPACE}, column1)) FROM (VALUES {}) AS v",
            lock_keys(digests)
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *self.tx).await?;
        Ok(())
    }

    /// Removes a writer's pin, in the transaction that records what it wrote.
    pub(crate) async fn release_pin(&mut self, pin: Option<&BlobPin>) -> Result<(), DbError> {
        if let Some(pin) = pin {
            sqlx::query("DELETE FROM blob_pins WHERE id = $1").bind(pin.id).execute(&mut *self.tx).await?;
        }
        Ok(())
    }
}

/// The condition under which the digest `column1` is garbage (binds `$1`: the cutoff, `$2`:
/// the oldest pin that still counts): nothing links, names or references it, no writer holds a
/// live pin on it, and its row (if any) is older than the cutoff.
const GARBAGE: &str = "NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = v.column1) \
     AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = v.column1) \
     AND NOT EXISTS (SELECT 1 FROM manifest_children c WHERE c.digest = v.column1) \
     AND NOT EXISTS (SELECT 1 FROM blob_pins p WHERE p.digest = v.column1 AND p.pinned_at > $2) \
     AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = v.column1 AND b.created_at >= $1)";

/// The columns of a candidate `v.column1`: digest, its row's size, whether a deleted
/// manifest had it.
const CANDIDATES: &str = "SELECT v.column1, COALESCE((SELECT b.size FROM blobs b WHERE b.digest = v.column1), 0), \
     CASE WHEN EXISTS (SELECT 1 FROM released_manifests r WHERE r.digest = v.column1) THEN 1 ELSE 0 END";

fn condemned_row(r: &sqlx::any::AnyRow) -> Result<Condemned, sqlx::Error> {
    Ok(Condemned { digest: r.try_get(0)?, size: r.try_get(1)?, manifest: r.try_get::<i32, _>(2)? != 0 })
}

impl Db {
    /// Pins `digest` before its bytes are written: waits while a collection is deleting it (a
    /// tombstone stands), then records the pin. `Busy` if the tombstone outlasts the wait.
    pub async fn pin_blob(&self, digest: &str) -> Result<BlobPin, DbError> {
        let deadline = now_millis() + TOMBSTONE_WAIT_MS;
        loop {
            let mut w = self.begin_write().await?;
            w.lock_digests_shared(self.dialect, &[digest]).await?;
            let doomed: Option<i64> = sqlx::query_scalar("SELECT job_id FROM blob_tombstones WHERE digest = $1")
                .bind(digest)
                .fetch_optional(&mut *w.tx)
                .await?;
            if doomed.is_none() {
                let id: i64 =
                    sqlx::query_scalar("INSERT INTO blob_pins (digest, pinned_at) VALUES ($1, $2) RETURNING id")
                        .bind(digest)
                        .bind(now_millis())
                        .fetch_one(&mut *w.tx)
                        .await?;
                w.commit().await?;
                return Ok(BlobPin { digest: digest.to_string(), id });
            }
            drop(w);
            if now_millis() > deadline {
                return Err(DbError::Busy(format!("a garbage collection is deleting {digest}; try again")));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Removes a pin whose write failed (a successful write removes it as it records).
    pub async fn unpin_blob(&self, pin: &BlobPin) -> Result<(), DbError> {
        let mut w = self.begin_write().await?;
        w.release_pin(Some(pin)).await?;
        w.commit().await?;
        Ok(())
    }

    /// Links older than `before` (ms) that no manifest of their repository references, after
    /// `after` in (repository, digest) order: candidates for [`Db::unlink_stale`].
    pub async fn stale_links(
        &self,
        before: i64,
        after: Option<&(i64, String)>,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, DbError> {
        let (after_repo, after_digest) = after.map_or((-1, ""), |(r, d)| (*r, d.as_str()));
        let rows = sqlx::query(
            "SELECT rb.repository_id, rb.digest FROM repository_blobs rb WHERE rb.created_at < $1 \
             AND (rb.repository_id, rb.digest) > ($2, $3) \
             AND NOT EXISTS (SELECT 1 FROM manifest_children c JOIN manifests m ON m.id = c.manifest_id \
                 WHERE m.repository_id = rb.repository_id AND c.digest = rb.digest) \
             ORDER BY rb.repository_id, rb.digest LIMIT $4",
        )
        .bind(before)
        .bind(after_repo)
        .bind(after_digest)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }

    /// Removes the links of `links` that are still stale, each checked again under its
    /// digest's lock (one a writer holds is left for the next collection), and condemns for
    /// collection `job_id`, in the same transaction, those of their digests that nothing holds
    /// any more (as [`Db::condemn`] does: the caller deletes their bytes next, then buries
    /// them). Returns how many links went, and what was condemned. `links` in (repository,
    /// digest) order, as [`Db::stale_links`] gives them. `buried`: digests of an earlier batch
    /// whose bytes are gone, buried in the same transaction (a commit saved).
    pub async fn unlink_stale(
        &self,
        job_id: i64,
        links: &[(i64, String)],
        before: i64,
        buried: &[&str],
    ) -> Result<(u64, Vec<Condemned>), DbError> {
        let digests: Vec<&str> = links.iter().map(|(_, d)| d.as_str()).collect();
        let mut w = self.begin_write().await?;
        self.bury_in(&mut w, buried).await?;
        let locked = self.try_lock_digests(&mut w, &digests).await?;
        let held: Vec<&(i64, String)> = links.iter().filter(|(_, d)| locked.contains(&lock_key(d))).collect();
        if held.is_empty() {
            w.commit().await?;
            return Ok((0, Vec::new()));
        }
        // A statement per repository, whose digests its primary key finds one by one (a list
        // of (repository, digest) pairs is matched on the repository alone: a scan of all its
        // links for every batch).
        let sql = format!(
            "DELETE FROM repository_blobs WHERE repository_id = $1 AND created_at < $2 \
             AND digest IN (SELECT column1 FROM {} AS l) \
             AND NOT EXISTS (SELECT 1 FROM manifest_children c JOIN manifests m ON m.id = c.manifest_id \
                 WHERE m.repository_id = repository_blobs.repository_id AND c.digest = repository_blobs.digest)",
            json_list(self.dialect, 3)
        );
        let mut removed = 0;
        for group in held.chunk_by(|a, b| a.0 == b.0) {
            let names: Vec<&str> = group.iter().map(|(_, d)| d.as_str()).collect();
            removed += sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(group[0].0)
                .bind(before)
                .bind(json_strings(&names))
                .execute(&mut *w.tx)
                .await?
                .rows_affected();
        }
        let mut unlinked: Vec<&str> = held.iter().map(|(_, d)| d.as_str()).collect();
        unlinked.sort_unstable();
        unlinked.dedup();
        let condemned = self.condemn_locked(&mut w, job_id, &unlinked, before).await?;
        w.commit().await?;
        Ok((removed, condemned))
    }

    /// The exclusive locks of a collection on `digests`' keys, tried without waiting; the keys
    /// it holds (all of them on SQLite, whose writer's turn is exclusive already).
    async fn try_lock_digests(&self, w: &mut WriteTx<'_>, digests: &[&str]) -> Result<Vec<i32>, DbError> {
        let mut keys: Vec<i32> = digests.iter().map(|d| lock_key(d)).collect();
        keys.sort_unstable();
        keys.dedup();
        if self.dialect != Dialect::Postgres || keys.is_empty() {
            return Ok(keys);
        }
        let sql = format!(
            "SELECT column1 FROM (VALUES {}) AS v WHERE pg_try_advisory_xact_lock({DIGEST_LOCK_SPACE}, column1)",
            lock_keys(digests)
        );
        let held: Vec<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *w.tx).await?;
        Ok(held)
    }

    /// The digests from `first` to `last` (inclusive) that something links, names or
    /// references now: read by index ranges, far cheaper per digest than [`Db::condemn`]'s
    /// check, so that a sweep asks `condemn` only about the rest. Only ever a reason to keep:
    /// what it misses (a collation that orders otherwise, a push after the read) `condemn`
    /// still checks.
    pub async fn live_between(&self, first: &str, last: &str) -> Result<std::collections::HashSet<String>, DbError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT digest FROM repository_blobs WHERE digest >= $1 AND digest <= $2 \
             UNION SELECT digest FROM manifests WHERE digest >= $1 AND digest <= $2 \
             UNION SELECT digest FROM manifest_children WHERE digest >= $1 AND digest <= $2",
        )
        .bind(first)
        .bind(last)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Of `digests` (found in storage), those that are garbage now, with the size their row
    /// gives (0 for bytes no row names): what a dry run reports. With `stale_links_gone`, as
    /// if the links [`Db::stale_links`] lists were removed already (a dry run removes nothing).
    pub async fn garbage_among(
        &self,
        digests: &[&str],
        before: i64,
        stale_links_gone: bool,
    ) -> Result<Vec<Condemned>, DbError> {
        if digests.is_empty() {
            return Ok(Vec::new());
        }
        let mut garbage = GARBAGE.to_string();
        if stale_links_gone {
            // Any reference by a manifest keeps the digest anyway; what remains of a link is
            // its age.
            garbage =
                garbage.replace("WHERE rb.digest = v.column1)", "WHERE rb.digest = v.column1 AND rb.created_at >= $1)");
        }
        let sql = format!("{CANDIDATES} FROM {} AS v WHERE {garbage}", json_list(self.dialect, 3));
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(before)
            .bind(now_millis() - PIN_LEASE_MS)
            .bind(json_strings(digests))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(condemned_row).collect::<Result<_, _>>()?)
    }

    /// Condemns those of `digests` that are garbage, for collection `job_id`: under their
    /// locks, checked again, their rows deleted and tombstones left, in one transaction. The
    /// caller deletes their bytes next, then [`Db::bury`]s them (or passes them as `buried`
    /// to the next call, which buries them in its transaction).
    pub async fn condemn(
        &self,
        job_id: i64,
        digests: &[&str],
        before: i64,
        buried: &[&str],
    ) -> Result<Vec<Condemned>, DbError> {
        if digests.is_empty() && buried.is_empty() {
            return Ok(Vec::new());
        }
        let mut w = self.begin_write().await?;
        self.bury_in(&mut w, buried).await?;
        let locked = self.try_lock_digests(&mut w, digests).await?;
        let held: Vec<&str> = digests.iter().copied().filter(|d| locked.contains(&lock_key(d))).collect();
        let condemned =
            if held.is_empty() { Vec::new() } else { self.condemn_locked(&mut w, job_id, &held, before).await? };
        w.commit().await?;
        Ok(condemned)
    }

    /// [`Db::condemn`]'s work in `w`, whose locks on `digests` are held.
    async fn condemn_locked(
        &self,
        w: &mut WriteTx<'_>,
        job_id: i64,
        digests: &[&str],
        before: i64,
    ) -> Result<Vec<Condemned>, DbError> {
        let sql = format!("{CANDIDATES} FROM {} AS v WHERE {GARBAGE}", json_list(self.dialect, 3));
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(before)
            .bind(now_millis() - PIN_LEASE_MS)
            .bind(json_strings(digests))
            .fetch_all(&mut *w.tx)
            .await?;
        let condemned: Vec<Condemned> = rows.iter().map(condemned_row).collect::<Result<_, _>>()?;
        if !condemned.is_empty() {
            let names: Vec<&str> = condemned.iter().map(|c| c.digest.as_str()).collect();
            let names = json_strings(&names);
            let list = json_list(self.dialect, 1);
            for table in ["blobs", "blob_pins"] {
                // Pins that no longer count (their writers died) go with their digest.
                let sql = format!("DELETE FROM {table} WHERE digest IN (SELECT column1 FROM {list} AS l)");
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&names).execute(&mut *w.tx).await?;
            }
            // One statement for the batch's tombstones (`WHERE true`: SQLite's upsert after a
            // SELECT needs it to parse).
            let sql = format!(
                "INSERT INTO blob_tombstones (digest, job_id, marked_at) SELECT column1, $2, $3 FROM {} AS l \
                 WHERE true ON CONFLICT (digest) DO NOTHING",
                json_list(self.dialect, 1)
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&names)
                .bind(job_id)
                .bind(now_millis())
                .execute(&mut *w.tx)
                .await?;
        }
        Ok(condemned)
    }

    /// Ends the deletion of `digests`, whose bytes are gone: their tombstones go, and writers
    /// waiting for them go on.
    pub async fn bury(&self, digests: &[&str]) -> Result<(), DbError> {
        if digests.is_empty() {
            return Ok(());
        }
        let mut w = self.begin_write().await?;
        self.bury_in(&mut w, digests).await?;
        w.commit().await?;
        Ok(())
    }

    /// [`Db::bury`] in `w`.
    async fn bury_in(&self, w: &mut WriteTx<'_>, digests: &[&str]) -> Result<(), DbError> {
        if digests.is_empty() {
            return Ok(());
        }
        let (names, list) = (json_strings(digests), json_list(self.dialect, 1));
        for table in ["blob_tombstones", "released_manifests"] {
            let sql = format!("DELETE FROM {table} WHERE digest IN (SELECT column1 FROM {list} AS l)");
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&names).execute(&mut *w.tx).await?;
        }
        Ok(())
    }

    /// Tombstones standing (a collection that died between condemning and burying left them):
    /// the next collection deletes their bytes and buries them first.
    pub async fn tombstones(&self, limit: i64) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar("SELECT digest FROM blob_tombstones ORDER BY digest LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Blob rows after `after` (digest order) that no repository links, older than `before`:
    /// rows whose bytes a sweep of storage did not find, or did not reach.
    pub async fn unlinked_blobs(&self, before: i64, after: &str, limit: i64) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT b.digest FROM blobs b WHERE b.created_at < $1 AND b.digest > $2 \
             AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest) \
             ORDER BY b.digest LIMIT $3",
        )
        .bind(before)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Forgets released manifests whose digest some repository holds again (re-pushed), once a
    /// collection has swept.
    pub async fn forget_held_released_manifests(&self) -> Result<u64, DbError> {
        self.write_one(sqlx::query(
            "DELETE FROM released_manifests WHERE EXISTS (SELECT 1 FROM manifests m WHERE m.digest = released_manifests.digest)",
        ))
        .await
    }

    /// Untagged artifacts (no tag, not an accessory, no index in the repository referencing
    /// them) created before `before`, after `after` (manifest id order): what `delete_untagged`
    /// deletes. (repository id, repository name, digest, manifest id).
    pub async fn untagged_artifacts(
        &self,
        before: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String, String, i64)>, DbError> {
        let rows = sqlx::query(
            "SELECT m.repository_id, r.name, m.digest, m.id FROM manifests m JOIN repositories r ON r.id = m.repository_id \
             WHERE m.id > $1 AND m.created_at < $2 AND m.accessory_of IS NULL \
             AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id) \
             AND NOT EXISTS (SELECT 1 FROM manifest_children c JOIN manifests p ON p.id = c.manifest_id \
                 WHERE c.kind = 'manifest' AND c.digest = m.digest AND p.repository_id = m.repository_id \
                 AND COALESCE(p.accessory_type, '') <> $4) \
             ORDER BY m.id LIMIT $3",
        )
        .bind(after)
        .bind(before)
        .bind(limit)
        // A referrers tag index lists referrers; it does not hold them.
        .bind(crate::REFERRERS_TAG_INDEX)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_come_from_the_hex() {
        assert_eq!(lock_key("sha256:00000001ffff"), 1);
        assert_eq!(lock_key("sha256:ffffffff0000"), -1);
        assert_eq!(lock_keys(&["sha256:00000002aa", "sha256:00000001bb", "sha256:00000002cc"]), "(1), (2)");
        // Not hex: hashed, still a key.
        let _ = lock_key("weird");
    }
}
