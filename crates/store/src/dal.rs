//! Object storage that `object_store` does not reach (OpenStack Swift, Alibaba OSS), through
//! Apache OpenDAL, behind the cargo feature `opendal`.
//!
//! OpenDAL's writers cannot resume a multipart upload from a saved id, so this driver does not
//! use multipart uploads across requests: each append becomes one object of its own
//! (`uploads/<id>/staged/<uuid>`, written by OpenDAL's writer, which cuts large bodies into
//! parts within the request), and commit copies a single staged object to the blob key, or
//! streams several into it. The upload's [`UploadState`] lists the staged objects; as in
//! `cloud.rs`, an append never overwrites what a recorded state names.
//!
//! Layout under the root: `blobs/<algorithm>/<two hex>/<hex>` and `uploads/<id>/staged/<uuid>`.

use std::time::Duration;

use async_trait::async_trait;
use berth_oci::range::ByteRange;
use berth_oci::{Algorithm, Digest, Hasher};
use berth_outbound::Route;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use opendal::{ErrorKind, Operator};
use serde::{Deserialize, Serialize};

use crate::{
    Appended, BlobBody, BlobPrefix, BlobStore, BlobWalk, ByteStream, OssOptions, S3Options, StoreError, StoredBlob,
    SwiftOptions, UploadState,
};

/// OpenDAL's writer sends parts of this size within one request.
const WRITE_CHUNK: usize = 8 << 20;

pub struct DalStore {
    provider: &'static str,
    op: Operator,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    staged: Vec<Staged>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Staged {
    name: String,
    len: u64,
}

impl Progress {
    fn decode(state: &[u8]) -> Result<Progress, StoreError> {
        crate::decode_state(state)
    }

    fn encode(&self) -> UploadState {
        crate::encode_state(self)
    }
}

fn backend(e: opendal::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn config(e: opendal::Error) -> StoreError {
    StoreError::Config(e.to_string())
}

/// The process's TLS provider, and reqwest as OpenDAL's HTTP transport (first installed wins).
fn install_transport() {
    crate::install_tls_provider();
    opendal_http_transport_reqwest::install_default();
}

/// `op` with an HTTP client of its own on `route`, trusting `ca_pem` besides the public roots
/// (the process-wide default transport reads the environment's proxy variables, and is one
/// for every operator).
fn routed(op: Operator, route: &Route, ca_pem: Option<&[u8]>) -> Result<Operator, StoreError> {
    let mut builder = route.client_builder().map_err(|e| StoreError::Config(e.to_string()))?;
    if let Some(pem) = ca_pem {
        let roots = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| StoreError::Config(format!("storage.ca_file: {e}")))?;
        if roots.is_empty() {
            return Err(StoreError::Config("storage.ca_file: no PEM certificate in it".into()));
        }
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
    }
    let client = builder.build().map_err(|e| StoreError::Config(format!("the storage client: {e}")))?;
    let transport = opendal::HttpTransporter::new(opendal_http_transport_reqwest::ReqwestTransport::new(client));
    Ok(op.with_context(opendal::OperationContext::new().with_http_transport(transport)))
}

fn root(root: &str) -> String {
    format!("/{}", root.trim_matches('/'))
}

impl DalStore {
    pub fn swift(options: &SwiftOptions) -> Result<DalStore, StoreError> {
        install_transport();
        let mut builder = opendal::services::Swift::default()
            .endpoint(&options.endpoint)
            .container(&options.container)
            .root(&root(&options.root));
        if let Some(token) = &options.token {
            builder = builder.token(token);
        }
        if let Some(key) = &options.temp_url_key {
            builder = builder.temp_url_key(key);
        }
        Ok(DalStore {
            provider: "swift",
            op: routed(Operator::new(builder).map_err(config)?, &options.proxy, options.ca_pem.as_deref())?,
        })
    }

    pub fn oss(options: &OssOptions) -> Result<DalStore, StoreError> {
        install_transport();
        let mut builder = opendal::services::Oss::default()
            .bucket(&options.bucket)
            .endpoint(&options.endpoint)
            .root(&root(&options.root));
        if let (Some(id), Some(secret)) = (&options.access_key_id, &options.access_key_secret) {
            builder = builder.access_key_id(id).access_key_secret(secret);
        }
        Ok(DalStore {
            provider: "oss",
            op: routed(Operator::new(builder).map_err(config)?, &options.proxy, options.ca_pem.as_deref())?,
        })
    }

    /// S3 through OpenDAL: not what `storage.type: s3` uses (that is `CloudStore`), but the
    /// way this driver is tested against the S3-compatible servers that run on loopback.
    pub fn s3(options: &S3Options) -> Result<DalStore, StoreError> {
        install_transport();
        let mut builder =
            opendal::services::S3::default().bucket(&options.bucket).root(&root(&options.root)).disable_config_load();
        if let Some(region) = &options.region {
            builder = builder.region(region);
        }
        if let Some(endpoint) = &options.endpoint {
            builder = builder.endpoint(endpoint);
        }
        if !options.path_style {
            builder = builder.enable_virtual_host_style();
        }
        if let (Some(key), Some(secret)) = (&options.access_key, &options.secret_key) {
            builder = builder.access_key_id(key).secret_access_key(secret);
        }
        Ok(DalStore {
            provider: "s3",
            op: routed(Operator::new(builder).map_err(config)?, &options.proxy, options.ca_pem.as_deref())?,
        })
    }

    fn blob_path(digest: &Digest) -> String {
        let hex = digest.hex();
        format!("blobs/{}/{}/{hex}", digest.algorithm().as_str(), &hex[..2])
    }

    fn upload_dir(id: &str) -> Result<String, StoreError> {
        crate::check_upload_id(id)?;
        Ok(format!("uploads/{id}/"))
    }

    fn staged_path(id: &str, name: &str) -> Result<String, StoreError> {
        Ok(format!("{}staged/{name}", DalStore::upload_dir(id)?))
    }

    async fn size_of(&self, path: &str) -> Result<Option<u64>, StoreError> {
        match self.op.stat(path).await {
            Ok(meta) => Ok(Some(meta.content_length())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    /// The bytes of the staged objects, in order, as one stream.
    async fn staged_stream(&self, id: &str, progress: &Progress) -> Result<ByteStream, StoreError> {
        let mut streams = Vec::new();
        for staged in &progress.staged {
            let path = DalStore::staged_path(id, &staged.name)?;
            let reader = self.op.reader(&path).await.map_err(|e| match e.kind() {
                ErrorKind::NotFound => StoreError::UploadNotFound(id.to_string()),
                _ => backend(e),
            })?;
            let stream = reader.into_bytes_stream(0..staged.len).await.map_err(backend)?;
            streams.push(stream.map_err(|e| e.to_string()));
        }
        Ok(futures_util::stream::iter(streams).flatten().boxed())
    }
}

#[async_trait]
impl BlobStore for DalStore {
    fn provider_name(&self) -> &'static str {
        self.provider
    }

    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        self.size_of(&DalStore::blob_path(digest)).await
    }

    async fn get(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobBody, StoreError> {
        let path = DalStore::blob_path(digest);
        let size = self.size_of(&path).await?.ok_or_else(|| StoreError::NotFound(digest.clone()))?;
        let (start, end) = match range {
            Some(r) => (r.start, r.end + 1),
            None => (0, size),
        };
        let reader = self.op.reader(&path).await.map_err(backend)?;
        let stream = reader.into_bytes_stream(start..end).await.map_err(backend)?;
        Ok(BlobBody::Stream { stream: stream.map_err(|e| e.to_string()).boxed(), len: end - start })
    }

    async fn put(&self, digest: &Digest, bytes: Bytes) -> Result<(), StoreError> {
        let actual = Digest::of(digest.algorithm(), &bytes);
        if &actual != digest {
            return Err(StoreError::DigestMismatch { expected: digest.clone(), actual });
        }
        self.op.write(&DalStore::blob_path(digest), bytes).await.map_err(backend)?;
        Ok(())
    }

    async fn delete(&self, digest: &Digest) -> Result<(), StoreError> {
        match self.op.delete(&DalStore::blob_path(digest)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    fn walk_blobs(&self, prefix: &BlobPrefix) -> BlobWalk {
        let mut dir = format!("blobs/{}/", prefix.algorithm().as_str());
        if let Some(shard) = prefix.shard() {
            dir.push_str(shard);
            dir.push('/');
        }
        let op = self.op.clone();
        let prefix = prefix.clone();
        let walk = async move {
            let lister = match op.lister_with(&dir).recursive(true).await {
                Ok(lister) => lister,
                Err(e) if e.kind() == ErrorKind::NotFound => return futures_util::stream::empty().boxed(),
                Err(e) => return futures_util::stream::once(std::future::ready(Err(backend(e)))).boxed(),
            };
            lister
                .filter_map(move |entry| {
                    let (op, prefix) = (op.clone(), prefix.clone());
                    async move {
                        let entry = match entry {
                            Ok(entry) => entry,
                            Err(e) => return Some(Err(backend(e))),
                        };
                        let mut segments = entry.path().rsplit('/');
                        let (name, shard) = (segments.next().unwrap_or(""), segments.next().unwrap_or(""));
                        let digest = prefix.covers(shard, name)?;
                        // A listing that leaves out the time (some services do) is asked again:
                        // a blob of unknown age must never look old to a sweep.
                        let meta = match entry.metadata().last_modified() {
                            Some(_) => entry.metadata().clone(),
                            None => match op.stat(entry.path()).await {
                                Ok(meta) => meta,
                                Err(e) if e.kind() == ErrorKind::NotFound => return None,
                                Err(e) => return Some(Err(backend(e))),
                            },
                        };
                        let modified = meta.last_modified().map(std::time::SystemTime::from)?;
                        Some(Ok(StoredBlob { digest, size: meta.content_length(), modified }))
                    }
                })
                .boxed()
        };
        Box::pin(futures_util::stream::once(walk).flatten())
    }

    async fn upload_start(&self, id: &str) -> Result<UploadState, StoreError> {
        DalStore::upload_dir(id)?;
        Ok(Progress::default().encode())
    }

    async fn upload_append(
        &self,
        id: &str,
        offset: u64,
        state: &[u8],
        hasher: &mut Hasher,
        mut body: ByteStream,
    ) -> Result<Appended, StoreError> {
        let mut progress = Progress::decode(state)?;
        let name = uuid::Uuid::new_v4().simple().to_string();
        let path = DalStore::staged_path(id, &name)?;
        let mut writer = self.op.writer_with(&path).chunk(WRITE_CHUNK).await.map_err(backend)?;
        let mut worker_hasher = hasher.clone();
        let mut received = 0u64;
        while let Some(item) = body.next().await {
            let chunk = match item {
                Ok(chunk) => chunk,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(StoreError::Body(e));
                }
            };
            worker_hasher.update(&chunk);
            received += chunk.len() as u64;
            writer.write(chunk).await.map_err(backend)?;
        }
        if received == 0 {
            let _ = writer.abort().await;
        } else {
            writer.close().await.map_err(backend)?;
            progress.staged.push(Staged { name, len: received });
        }
        *hasher = worker_hasher;
        Ok(Appended { offset: offset + received, state: progress.encode() })
    }

    async fn upload_commit(&self, id: &str, size: u64, state: &[u8], digest: &Digest) -> Result<(), StoreError> {
        let progress = Progress::decode(state)?;
        let blob = DalStore::blob_path(digest);
        let total: u64 = progress.staged.iter().map(|s| s.len).sum();
        if total != size {
            return Err(StoreError::Backend(format!("upload {id} holds {total} bytes, not {size}")));
        }
        if self.size_of(&blob).await?.is_none() {
            match progress.staged.as_slice() {
                [only] if self.op.info().capability().copy => {
                    let from = DalStore::staged_path(id, &only.name)?;
                    self.op.copy(&from, &blob).await.map_err(|e| match e.kind() {
                        ErrorKind::NotFound => StoreError::UploadNotFound(id.to_string()),
                        _ => backend(e),
                    })?;
                }
                _ => {
                    // One writer: the blob appears whole when it closes, or not at all.
                    let mut stream = self.staged_stream(id, &progress).await?;
                    let mut writer = self.op.writer_with(&blob).chunk(WRITE_CHUNK).await.map_err(backend)?;
                    while let Some(chunk) = stream.next().await {
                        match chunk {
                            Ok(chunk) => writer.write(chunk).await.map_err(backend)?,
                            Err(e) => {
                                let _ = writer.abort().await;
                                return Err(StoreError::Backend(e));
                            }
                        }
                    }
                    writer.close().await.map_err(backend)?;
                }
            }
        }
        self.op.delete_with(&DalStore::upload_dir(id)?).recursive(true).await.map_err(backend)
    }

    async fn upload_rehash(
        &self,
        id: &str,
        size: u64,
        state: &[u8],
        algorithm: Algorithm,
    ) -> Result<Digest, StoreError> {
        let progress = Progress::decode(state)?;
        let mut stream = self.staged_stream(id, &progress).await?;
        let (mut hasher, mut read) = (Hasher::new(algorithm), 0u64);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(StoreError::Backend)?;
            read += chunk.len() as u64;
            hasher.update(&chunk);
        }
        if read != size {
            return Err(StoreError::Backend(format!("upload {id} holds {read} bytes, not {size}")));
        }
        Ok(hasher.finish())
    }

    async fn upload_abort(&self, id: &str, _state: &[u8]) -> Result<(), StoreError> {
        self.op.delete_with(&DalStore::upload_dir(id)?).recursive(true).await.map_err(backend)
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.op.check().await.map_err(backend)
    }

    async fn presigned_get(&self, digest: &Digest, ttl: Duration) -> Result<Option<String>, StoreError> {
        if !self.op.info().capability().presign_read {
            return Ok(None);
        }
        let request = self.op.presign_read(&DalStore::blob_path(digest), ttl).await.map_err(backend)?;
        Ok(Some(request.uri().to_string()))
    }
}
