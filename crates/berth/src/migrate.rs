//! `berth admin migrate-data --to <config>`: moves an embedded installation (SQLite and local
//! blobs) to the external database and the blob storage (object storage or another blob root)
//! of another configuration, and checks the
//! result: row counts of every table, and every blob present with its size and, when the bytes
//! were copied, its digest. The source is only read; the target database must be fresh.

use anyhow::Context;
use berth_db::Db;
use berth_oci::Hasher;

use futures_util::StreamExt;

use berth::config::{Config, DatabaseKind, StorageKind};

/// Blobs up to this size are copied with one write (read whole into memory); larger ones
/// through an upload session, streamed.
const WHOLE_BLOB_MAX: i64 = 8 << 20;

pub async fn run(source: &Config, target: &Config) -> anyhow::Result<()> {
    if source.database.kind != DatabaseKind::Embedded {
        anyhow::bail!("migrate-data moves an embedded installation; this one's database is already external");
    }
    if target.database.kind != DatabaseKind::External {
        anyhow::bail!("the target configuration must have database.type: external");
    }
    let source_file = source.data_dir.join("berth.db");
    if !source_file.exists() {
        anyhow::bail!("no embedded database at {}", source_file.display());
    }
    let from = Db::open_sqlite(&source_file).await.context("opening the embedded database")?;
    let external = &target.database.external;
    let to = Db::connect(&external.url()?, external.max_connections)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}:{}", external.host, external.port))?;

    let counts = from.copy_into(&to).await.context("copying the metadata")?;
    for c in &counts {
        println!("{:<20} {:>10} rows", c.table, c.target);
    }

    // The same blob root for both: nothing to copy, only to check.
    let same_root = source.storage.kind == StorageKind::Filesystem
        && target.storage.kind == StorageKind::Filesystem
        && match (std::fs::canonicalize(source.blob_root()), std::fs::canonicalize(target.blob_root())) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
    let from_store = source.blob_store().context("opening the source blobs")?;
    let to_store = target.blob_store().context("opening the target blob storage")?;
    let blobs = from.all_stored_content().await?;
    let (mut copied, mut present) = (0usize, 0usize);
    for (digest, size) in &blobs {
        let digest = berth_oci::Digest::parse(digest).with_context(|| format!("a stored digest {digest}"))?;
        if to_store.stat(&digest).await? == Some(*size as u64) {
            present += 1;
            continue;
        }
        if same_root {
            anyhow::bail!("blob {digest} is missing from the blob root");
        }
        let body = from_store.get(&digest, None).await.with_context(|| format!("reading blob {digest}"))?;
        if *size <= WHOLE_BLOB_MAX {
            // Small blobs (most of them) in one verified write: one request to an object store.
            let mut bytes = Vec::with_capacity(*size as usize);
            let mut stream = body.into_stream();
            while let Some(chunk) = stream.next().await {
                bytes.extend_from_slice(&chunk.map_err(anyhow::Error::msg)?);
            }
            match to_store.put(&digest, bytes.into()).await {
                Err(berth_store::StoreError::DigestMismatch { actual, .. }) => {
                    anyhow::bail!("blob {digest} read back as {actual}: the source is damaged")
                }
                other => other?,
            }
            copied += 1;
            continue;
        }
        // Upload ids are at most 64 characters.
        let id = format!("migrate-{}", &digest.hex()[..48]);
        let state = to_store.upload_start(&id).await?;
        let mut hasher = Hasher::new(digest.algorithm());
        let appended = to_store.upload_append(&id, 0, &state, &mut hasher, body.into_stream()).await?;
        let (written, state) = (appended.offset, appended.state);
        let got = hasher.finish();
        if got != digest || written != *size as u64 {
            to_store.upload_abort(&id, &state).await?;
            anyhow::bail!("blob {digest} read back as {got} ({written} bytes): the source is damaged");
        }
        to_store.upload_commit(&id, written, &state, &digest).await?;
        copied += 1;
    }
    println!("{:<20} {:>10} copied and verified, {} already present", "blobs and manifests", copied, present);
    from.close().await;
    to.close().await;
    println!("done: start berth with the target configuration");
    Ok(())
}
