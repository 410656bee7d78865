//! Content storage: immutable blobs addressed by digest, and the upload sessions that produce
//! them.
//!
//! The interface is deliberately small, in the manner of CNCF Distribution's storage drivers:
//! one implementation per backend, each testable alone. A store knows nothing of repositories or
//! users; which repository may see a blob is metadata and lives in the database.
//!
//! Invariants every driver keeps:
//! - A blob becomes visible only complete and verified (temporary name, then an atomic publish).
//! - An upload's bytes up to the offset returned by [`BlobStore::upload_append`] are durable.
//! - A driver keeps nothing about an upload in memory: what it must remember between requests
//!   (an object store's multipart id and parts) is returned as opaque [`UploadState`] that the
//!   caller stores beside the offset, so the next chunk may arrive at another replica.

mod body;
mod cloud;
#[cfg(feature = "opendal")]
mod dal;
mod fs;

use std::pin::Pin;

use async_trait::async_trait;
use berth_oci::range::ByteRange;
use berth_oci::{Algorithm, Digest, Hasher};
use bytes::Bytes;
use futures_util::Stream;

pub use cloud::{AzureOptions, CloudStore, GcsOptions, OssOptions, S3Options, SwiftOptions, install_tls_provider};
#[cfg(feature = "opendal")]
pub use dal::DalStore;

/// A store on OpenStack Swift, in builds with the feature `opendal`.
pub fn open_swift(options: &SwiftOptions) -> Result<std::sync::Arc<dyn BlobStore>, StoreError> {
    #[cfg(feature = "opendal")]
    return Ok(std::sync::Arc::new(DalStore::swift(options)?));
    #[cfg(not(feature = "opendal"))]
    {
        let _ = options;
        Err(StoreError::Config("this build has no Swift support (build Berth with the feature `opendal`)".into()))
    }
}

/// A store on Alibaba Cloud OSS, in builds with the feature `opendal`.
pub fn open_oss(options: &OssOptions) -> Result<std::sync::Arc<dyn BlobStore>, StoreError> {
    #[cfg(feature = "opendal")]
    return Ok(std::sync::Arc::new(DalStore::oss(options)?));
    #[cfg(not(feature = "opendal"))]
    {
        let _ = options;
        Err(StoreError::Config("this build has no OSS support (build Berth with the feature `opendal`)".into()))
    }
}
pub use fs::FsStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("blob {0} not found")]
    NotFound(Digest),
    #[error("upload {0} not found")]
    UploadNotFound(String),
    #[error("content does not match digest {expected}: got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("client body: {0}")]
    Body(String),
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("object storage: {0}")]
    Backend(String),
    #[error("storage configuration: {0}")]
    Config(String),
}

/// What a driver remembers of an upload session between requests, opaque to the caller, who
/// keeps it with the session (in the database) and hands it back with the next call. Empty for
/// the filesystem; the multipart id, part ids and staged objects for object stores.
pub type UploadState = Vec<u8>;

/// Reads a driver's upload state (empty: a fresh upload).
pub(crate) fn decode_state<T: serde::de::DeserializeOwned + Default>(state: &[u8]) -> Result<T, StoreError> {
    if state.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(state).map_err(|e| StoreError::Backend(format!("unreadable upload state: {e}")))
}

/// Writes a driver's upload state.
pub(crate) fn encode_state<T: serde::Serialize>(progress: &T) -> UploadState {
    // The states are plain strings and integers, whose serialization cannot fail.
    serde_json::to_vec(progress).unwrap_or_default()
}

/// Upload ids come from the URL: each driver makes one path segment of one, so only short
/// ids of safe characters are accepted (anything else is an unknown upload).
pub(crate) fn check_upload_id(id: &str) -> Result<(), StoreError> {
    let safe = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if safe { Ok(()) } else { Err(StoreError::UploadNotFound(id.to_string())) }
}

/// The outcome of an append: the new durable offset and the state to keep for the next call.
#[derive(Debug)]
pub struct Appended {
    pub offset: u64,
    pub state: UploadState,
}

/// A stream of request body chunks. Errors are the client's (a dropped connection).
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

/// The bytes of a blob (or of a range of it), in the form that lets the server send them
/// cheapest: a local file can go to the socket with `sendfile`, anything else is a stream.
pub enum BlobBody {
    File { file: std::fs::File, start: u64, len: u64 },
    Stream { stream: ByteStream, len: u64 },
}

impl BlobBody {
    pub fn len(&self) -> u64 {
        match self {
            BlobBody::File { len, .. } | BlobBody::Stream { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which published blobs a walk covers: one algorithm's, those whose hex starts with a given
/// (possibly empty) prefix. A GC walks shard by shard (`sha256`, `00` to `ff`), so that it can
/// run shards in parallel and resume after the last one it finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobPrefix {
    algorithm: Algorithm,
    hex: String,
}

impl BlobPrefix {
    /// Every blob of `algorithm`.
    pub fn all(algorithm: Algorithm) -> BlobPrefix {
        BlobPrefix { algorithm, hex: String::new() }
    }

    /// The blobs of `algorithm` whose hex starts with `hex`; `None` unless `hex` is lowercase
    /// hex no longer than a digest's.
    pub fn new(algorithm: Algorithm, hex: &str) -> Option<BlobPrefix> {
        let valid =
            hex.len() <= algorithm.hex_len() && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| BlobPrefix { algorithm, hex: hex.to_string() })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The one shard (two hex digits) the prefix lies in, when it names one.
    pub fn shard(&self) -> Option<&str> {
        self.hex.get(..2)
    }

    /// Whether the blob named `<shard>/<name>` in this algorithm's directory is covered: the
    /// digest it names, if it is a well-formed blob name in its right shard.
    pub(crate) fn covers(&self, shard: &str, name: &str) -> Option<Digest> {
        if !name.starts_with(&self.hex) || name.get(..2) != Some(shard) {
            return None;
        }
        Digest::parse(&format!("{}:{name}", self.algorithm.as_str())).ok()
    }
}

/// A published blob, as a walk finds it in storage.
#[derive(Clone, Debug)]
pub struct StoredBlob {
    pub digest: Digest,
    pub size: u64,
    /// When it was written: a sweep leaves what is younger than its time window alone.
    pub modified: std::time::SystemTime,
}

/// The blobs a walk finds, streamed (in no particular order), so that memory stays flat
/// whatever the store holds.
pub type BlobWalk = Pin<Box<dyn Stream<Item = Result<StoredBlob, StoreError>> + Send>>;

/// A storage backend.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// The backend's name as Harbor reports it (`filesystem`, `s3`, `gcs`, `azure`).
    fn provider_name(&self) -> &'static str;

    /// The size of a stored blob, or `None` when it is absent.
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError>;

    /// Reads a blob, or the given range of it (the caller has checked the range against the
    /// size).
    async fn get(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobBody, StoreError>;

    /// Stores a small blob given whole (manifests), verifying it against its digest first.
    async fn put(&self, digest: &Digest, bytes: Bytes) -> Result<(), StoreError>;

    /// Removes a blob; removing an absent blob is not an error.
    async fn delete(&self, digest: &Digest) -> Result<(), StoreError>;

    /// Removes blobs (GC's sweep), `concurrency` deletions at once; absent ones are no error.
    /// This default deletes one by one; a driver with a cheaper way overrides it (a bulk
    /// delete request, or one blocking thread per share of the list rather than one per file).
    async fn delete_many(&self, digests: &[Digest], concurrency: usize) -> Result<(), StoreError> {
        use futures_util::StreamExt;
        let mut running = futures_util::stream::FuturesUnordered::new();
        for digest in digests {
            if running.len() >= concurrency.max(1)
                && let Some(done) = running.next().await
            {
                done?;
            }
            running.push(self.delete(digest));
        }
        while let Some(done) = running.next().await {
            done?;
        }
        Ok(())
    }

    /// Every published blob under `prefix` (Distribution's `Walk`): what GC compares with what
    /// the database names. Objects that are not well-formed blob names are skipped.
    fn walk_blobs(&self, prefix: &BlobPrefix) -> BlobWalk;

    /// Prepares storage for a new upload session; returns its first state.
    async fn upload_start(&self, id: &str) -> Result<UploadState, StoreError>;

    /// Appends a body at `offset` (the offset the caller has recorded as durable, with the
    /// `state` recorded beside it: anything written past it is a remnant of an unacknowledged
    /// write and is discarded), feeding every byte to `hasher`. Returns the new offset and state
    /// once the bytes are durable. On a body error nothing past `offset` counts, and the hasher
    /// must be discarded by the caller.
    async fn upload_append(
        &self,
        id: &str,
        offset: u64,
        state: &[u8],
        hasher: &mut Hasher,
        body: ByteStream,
    ) -> Result<Appended, StoreError>;

    /// Publishes an upload's first `size` bytes as the blob `digest`, which the caller has
    /// verified with the upload's hasher. The upload is gone afterwards. Publishing again after
    /// an interrupted commit either completes it or answers [`StoreError::UploadNotFound`]
    /// when the blob was already published.
    async fn upload_commit(&self, id: &str, size: u64, state: &[u8], digest: &Digest) -> Result<(), StoreError>;

    /// Digest of an upload's first `size` bytes under another algorithm than the session's
    /// (a client may name a sha512 digest only when it finishes): reads the bytes again. The
    /// session may not be appended to afterwards (an object store must assemble it to read it).
    async fn upload_rehash(
        &self,
        id: &str,
        size: u64,
        state: &[u8],
        algorithm: Algorithm,
    ) -> Result<Digest, StoreError>;

    /// Discards an upload session's bytes.
    async fn upload_abort(&self, id: &str, state: &[u8]) -> Result<(), StoreError>;

    /// Total and free bytes of the volume holding the blobs, where the backend has such a
    /// thing (object stores do not).
    async fn capacity(&self) -> Result<Option<(u64, u64)>, StoreError> {
        Ok(None)
    }

    /// Whether the backend answers (for readiness): an error says why not.
    async fn check(&self) -> Result<(), StoreError> {
        self.capacity().await.map(|_| ())
    }

    /// A URL from which a client may read the blob directly for `ttl`, where the backend can
    /// sign one (object stores), so that blob bytes need not pass through the registry.
    async fn presigned_get(&self, _digest: &Digest, _ttl: std::time::Duration) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
}
