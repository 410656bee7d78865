//! An upload whose finish is cut off after its bytes were published (the client reset the
//! connection, so the request's future was dropped) is completed later only with what that
//! session received: naming another blob's digest (here a private blob of another project,
//! by its sha512 digest) never links that blob into the caller's repository.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use berth_core::Registry;
use berth_core::identity::Identities;
use berth_db::Db;
use berth_oci::range::ByteRange;
use berth_oci::{Algorithm, Digest, ErrorCode, Hasher, RepositoryName};
use berth_store::{Appended, BlobBody, BlobPrefix, BlobStore, BlobWalk, ByteStream, FsStore, StoreError, UploadState};
use bytes::Bytes;

/// The filesystem driver, whose `upload_commit` can be made to publish and then never answer:
/// what a request dropped between publishing and closing its session leaves behind. (A fault
/// that cannot be timed from outside reliably, hence the wrapper.)
struct StallAfterPublish {
    inner: FsStore,
    stall: AtomicBool,
}

#[async_trait]
impl BlobStore for StallAfterPublish {
    fn provider_name(&self) -> &'static str {
        self.inner.provider_name()
    }
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        self.inner.stat(digest).await
    }
    async fn get(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobBody, StoreError> {
        self.inner.get(digest, range).await
    }
    async fn put(&self, digest: &Digest, bytes: Bytes) -> Result<(), StoreError> {
        self.inner.put(digest, bytes).await
    }
    async fn delete(&self, digest: &Digest) -> Result<(), StoreError> {
        self.inner.delete(digest).await
    }

    fn walk_blobs(&self, prefix: &BlobPrefix) -> BlobWalk {
        self.inner.walk_blobs(prefix)
    }
    async fn upload_start(&self, id: &str) -> Result<UploadState, StoreError> {
        self.inner.upload_start(id).await
    }
    async fn upload_append(
        &self,
        id: &str,
        offset: u64,
        state: &[u8],
        hasher: &mut Hasher,
        body: ByteStream,
    ) -> Result<Appended, StoreError> {
        self.inner.upload_append(id, offset, state, hasher, body).await
    }
    async fn upload_commit(&self, id: &str, size: u64, state: &[u8], digest: &Digest) -> Result<(), StoreError> {
        self.inner.upload_commit(id, size, state, digest).await?;
        if self.stall.swap(false, Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
    async fn upload_rehash(
        &self,
        id: &str,
        size: u64,
        state: &[u8],
        algorithm: Algorithm,
    ) -> Result<Digest, StoreError> {
        self.inner.upload_rehash(id, size, state, algorithm).await
    }
    async fn upload_abort(&self, id: &str, state: &[u8]) -> Result<(), StoreError> {
        self.inner.upload_abort(id, state).await
    }
}

fn body(bytes: &'static [u8]) -> ByteStream {
    Box::pin(futures_util::stream::iter([Ok::<_, String>(Bytes::from_static(bytes))]))
}

async fn registry(dir: &std::path::Path) -> (Registry, Arc<StallAfterPublish>) {
    let db = Db::open_sqlite(&dir.join("berth.db")).await.unwrap();
    Identities::new(db.clone()).bootstrap(Some("Harbor12345")).await.unwrap();
    let admin = db.user_by_name("admin").await.unwrap().unwrap();
    db.create_project("secret", admin.id, &[("public", "false")]).await.unwrap();
    db.create_project("mine", admin.id, &[("public", "false")]).await.unwrap();
    let store =
        Arc::new(StallAfterPublish { inner: FsStore::open(dir.join("blobs")).unwrap(), stall: AtomicBool::new(false) });
    (Registry::new(db, store.clone()), store)
}

#[tokio::test]
async fn an_interrupted_finish_never_links_a_blob_the_session_did_not_receive() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, store) = registry(dir.path()).await;
    let victim_repo = RepositoryName::parse("secret/data").unwrap();
    let mine = RepositoryName::parse("mine/app").unwrap();
    // The victim's private blob, pushed under its sha512 digest.
    let victim: &'static [u8] = b"the victim's private layer";
    let victim_digest = Digest::of(Algorithm::Sha512, victim);
    let up = registry.upload_start(&victim_repo).await.unwrap();
    registry.upload_finish(&victim_repo, &up.id, &victim_digest, None, Some(body(victim))).await.unwrap();

    for round in 0..20 {
        // The attacker's own upload, finished with its bytes in the PUT, and cut off after
        // its bytes were published.
        let own: &'static [u8] = if round % 2 == 0 { b"attacker bytes" } else { b"" };
        let own_digest = Digest::of(Algorithm::Sha256, own);
        let up = registry.upload_start(&mine).await.unwrap();
        store.stall.store(true, Ordering::SeqCst);
        let cut = tokio::time::timeout(
            Duration::from_millis(200),
            registry.upload_finish(&mine, &up.id, &own_digest, None, Some(body(own))),
        )
        .await;
        assert!(cut.is_err(), "the finish was to be cut off");
        // Then finishing the same session naming the victim's digest is refused...
        let err = registry.upload_finish(&mine, &up.id, &victim_digest, None, None).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::DigestInvalid), "{err}");
        assert_eq!(
            registry.blob_size(&mine, &victim_digest).await.unwrap_err().code(),
            Some(ErrorCode::BlobUnknown),
            "the victim's blob was linked into the attacker's repository"
        );
        // ... and so is the sha256 digest of the victim's bytes.
        let other = Digest::of(Algorithm::Sha256, victim);
        assert!(registry.upload_finish(&mine, &up.id, &other, None, None).await.is_err());
        // While the digest of what the session did receive completes it.
        assert_eq!(registry.upload_finish(&mine, &up.id, &own_digest, None, None).await.unwrap(), own.len() as u64);
        assert_eq!(registry.blob_size(&mine, &own_digest).await.unwrap(), own.len() as u64);
    }
}

/// The same with a sha512 digest for the session's own bytes: completed by hashing the stored
/// blob again, which is what the session received.
#[tokio::test]
async fn an_interrupted_sha512_finish_completes_with_its_own_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (registry, store) = registry(dir.path()).await;
    let mine = RepositoryName::parse("mine/app").unwrap();
    let own: &'static [u8] = b"bytes named by sha512";
    let digest = Digest::of(Algorithm::Sha512, own);
    let up = registry.upload_start(&mine).await.unwrap();
    store.stall.store(true, Ordering::SeqCst);
    let cut = tokio::time::timeout(
        Duration::from_millis(200),
        registry.upload_finish(&mine, &up.id, &digest, None, Some(body(own))),
    )
    .await;
    assert!(cut.is_err());
    assert_eq!(registry.upload_finish(&mine, &up.id, &digest, None, None).await.unwrap(), own.len() as u64);
    assert_eq!(registry.blob_size(&mine, &digest).await.unwrap(), own.len() as u64);
}
