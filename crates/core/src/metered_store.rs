//! A storage driver that times every call into the one it wraps, as
//! `registry_storage_action_seconds{action, driver}` (Distribution's metric and action names
//! where they have one: Stat, Reader, PutContent, Delete, Writer, Move, RedirectURL).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use berth_oci::range::ByteRange;
use berth_oci::{Algorithm, Digest, Hasher};
use berth_store::{Appended, BlobBody, BlobPrefix, BlobStore, BlobWalk, ByteStream, StoreError, UploadState};
use bytes::Bytes;

pub struct MeteredStore {
    inner: Arc<dyn BlobStore>,
}

impl MeteredStore {
    pub fn wrap(inner: Arc<dyn BlobStore>) -> Arc<dyn BlobStore> {
        Arc::new(MeteredStore { inner })
    }

    async fn timed<T>(&self, action: &str, call: impl Future<Output = T>) -> T {
        use tracing::Instrument;
        let start = Instant::now();
        let span = tracing::info_span!("storage", otel.name = action, driver = self.inner.provider_name());
        let out = call.instrument(span).await;
        berth_metrics::metrics()
            .storage_action
            .get(&[action, self.inner.provider_name()])
            .observe(start.elapsed().as_secs_f64());
        out
    }
}

#[async_trait]
impl BlobStore for MeteredStore {
    fn provider_name(&self) -> &'static str {
        self.inner.provider_name()
    }

    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        self.timed("Stat", self.inner.stat(digest)).await
    }

    async fn get(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobBody, StoreError> {
        self.timed("Reader", self.inner.get(digest, range)).await
    }

    async fn put(&self, digest: &Digest, bytes: Bytes) -> Result<(), StoreError> {
        self.timed("PutContent", self.inner.put(digest, bytes)).await
    }

    async fn delete(&self, digest: &Digest) -> Result<(), StoreError> {
        self.timed("Delete", self.inner.delete(digest)).await
    }

    /// Timed as one `DeleteMany` per call (a GC batch).
    async fn delete_many(&self, digests: &[Digest], concurrency: usize) -> Result<(), StoreError> {
        self.timed("DeleteMany", self.inner.delete_many(digests, concurrency)).await
    }

    /// Not timed: a walk is a stream that lives as long as its consumer wants (Distribution's
    /// `Walk` is not among its timed actions either).
    fn walk_blobs(&self, prefix: &BlobPrefix) -> BlobWalk {
        self.inner.walk_blobs(prefix)
    }

    async fn upload_start(&self, id: &str) -> Result<UploadState, StoreError> {
        self.timed("Writer", self.inner.upload_start(id)).await
    }

    async fn upload_append(
        &self,
        id: &str,
        offset: u64,
        state: &[u8],
        hasher: &mut Hasher,
        body: ByteStream,
    ) -> Result<Appended, StoreError> {
        self.timed("Write", self.inner.upload_append(id, offset, state, hasher, body)).await
    }

    async fn upload_commit(&self, id: &str, size: u64, state: &[u8], digest: &Digest) -> Result<(), StoreError> {
        self.timed("Move", self.inner.upload_commit(id, size, state, digest)).await
    }

    async fn upload_rehash(
        &self,
        id: &str,
        size: u64,
        state: &[u8],
        algorithm: Algorithm,
    ) -> Result<Digest, StoreError> {
        self.timed("Rehash", self.inner.upload_rehash(id, size, state, algorithm)).await
    }

    async fn upload_abort(&self, id: &str, state: &[u8]) -> Result<(), StoreError> {
        self.timed("Cancel", self.inner.upload_abort(id, state)).await
    }

    async fn capacity(&self) -> Result<Option<(u64, u64)>, StoreError> {
        self.inner.capacity().await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.inner.check().await
    }

    async fn presigned_get(&self, digest: &Digest, ttl: std::time::Duration) -> Result<Option<String>, StoreError> {
        self.timed("RedirectURL", self.inner.presigned_get(digest, ttl)).await
    }
}
