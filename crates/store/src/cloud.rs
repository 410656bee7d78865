//! Object storage (S3 and S3-compatible servers, Google Cloud Storage, Azure Blob Storage)
//! through the `object_store` crate, which has one client per backend; this driver adds what a
//! registry needs on top of them: blobs by digest, and uploads that continue on any replica.
//!
//! Layout under the configured root (a key prefix):
//! - `blobs/<algorithm>/<two hex>/<hex>`: published blobs;
//! - `uploads/<id>/data`: the object an upload's multipart upload completes into, then copied to
//!   its blob key (a multipart upload's key is fixed when it starts, before the digest is known);
//! - `uploads/<id>/staged/<uuid>`: bytes received but too few to make a part: object stores take
//!   parts of at least 5 MiB (but the last), while clients send chunks of any size.
//!
//! An upload's [`UploadState`] lists the multipart id, the parts' ids and the staged objects.
//! Nothing a recorded state refers to is overwritten or deleted before commit or abort: an
//! append that is never acknowledged writes its staged bytes under new names and re-sends part
//! numbers past the recorded ones (a later append sends them again, and the store keeps the last
//! copy of a part number), so continuing from the recorded state is always right.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_oci::range::ByteRange;
use berth_oci::{Algorithm, Digest, Hasher};
use berth_outbound::Route;
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};

use crate::{Appended, BlobBody, BlobPrefix, BlobStore, BlobWalk, ByteStream, StoreError, StoredBlob, UploadState};

/// The smallest part object stores accept (but for the last): S3's and GCS's 5 MiB.
const MIN_PART: usize = 5 << 20;
/// Parts are cut at this size: large enough for few requests, small enough to hold two per
/// upload in memory (one being sent while the next fills). With 10 000 parts at most, blobs up
/// to about 100 GiB.
const PART_SIZE: usize = 10 << 20;
/// S3 caps a part number at 10 000.
const MAX_PARTS: usize = 10_000;
/// The largest object one server-side copy request may copy (S3's CopyObject limit); larger
/// blobs are copied by streaming them through a new multipart upload.
const MAX_SINGLE_COPY: u64 = 5 << 30;

/// Amazon S3 or an S3-compatible server (MinIO, Ceph RGW, moto, ...).
#[derive(Clone, Debug, Default)]
pub struct S3Options {
    pub bucket: String,
    pub region: Option<String>,
    /// For S3-compatible servers: their URL (`http://` allowed).
    pub endpoint: Option<String>,
    /// `https://endpoint/bucket/key` rather than `https://bucket.endpoint/key`.
    pub path_style: bool,
    /// Without keys, the environment's credentials (variables, profile, instance metadata).
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub session_token: Option<String>,
    /// A key prefix under which everything is kept.
    pub root: String,
    /// How its client reaches the endpoint (the `registry` component's proxy route).
    pub proxy: Route,
    /// CA certificates (PEM) trusted besides the public roots: an endpoint signed by an
    /// internal CA (MinIO, Ceph behind the cluster's CA).
    pub ca_pem: Option<Vec<u8>>,
}

/// Google Cloud Storage.
#[derive(Clone, Debug, Default)]
pub struct GcsOptions {
    pub bucket: String,
    /// A service account key file; without it, the environment's credentials.
    pub credentials_file: Option<String>,
    pub root: String,
    /// How its client reaches the endpoint (the `registry` component's proxy route).
    pub proxy: Route,
    /// CA certificates (PEM) trusted besides the public roots: an endpoint signed by an
    /// internal CA (MinIO, Ceph behind the cluster's CA).
    pub ca_pem: Option<Vec<u8>>,
}

/// Azure Blob Storage.
#[derive(Clone, Debug, Default)]
pub struct AzureOptions {
    pub account_name: String,
    pub container: String,
    /// Without it, the environment's credentials.
    pub account_key: Option<String>,
    /// A custom endpoint (Azurite, sovereign clouds).
    pub endpoint: Option<String>,
    pub root: String,
    /// How its client reaches the endpoint (the `registry` component's proxy route).
    pub proxy: Route,
    /// CA certificates (PEM) trusted besides the public roots: an endpoint signed by an
    /// internal CA (MinIO, Ceph behind the cluster's CA).
    pub ca_pem: Option<Vec<u8>>,
}

/// OpenStack Swift (through OpenDAL: the feature `opendal`).
#[derive(Clone, Debug, Default)]
pub struct SwiftOptions {
    /// The storage URL of the account (`https://swift.example.com/v1/AUTH_account`).
    pub endpoint: String,
    pub container: String,
    /// An authentication token for the account.
    pub token: Option<String>,
    /// The account's temporary-URL key, which presigned reads need.
    pub temp_url_key: Option<String>,
    pub root: String,
    /// How its client reaches the endpoint (the `registry` component's proxy route).
    pub proxy: Route,
    /// CA certificates (PEM) trusted besides the public roots: an endpoint signed by an
    /// internal CA (MinIO, Ceph behind the cluster's CA).
    pub ca_pem: Option<Vec<u8>>,
}

/// Alibaba Cloud OSS (through OpenDAL: the feature `opendal`).
#[derive(Clone, Debug, Default)]
pub struct OssOptions {
    pub bucket: String,
    /// `https://oss-<region>.aliyuncs.com`.
    pub endpoint: String,
    pub access_key_id: Option<String>,
    pub access_key_secret: Option<String>,
    pub root: String,
    /// How its client reaches the endpoint (the `registry` component's proxy route).
    pub proxy: Route,
    /// CA certificates (PEM) trusted besides the public roots: an endpoint signed by an
    /// internal CA (MinIO, Ceph behind the cluster's CA).
    pub ca_pem: Option<Vec<u8>>,
}

/// A blob store on object storage.
pub struct CloudStore {
    provider: &'static str,
    objects: Arc<dyn ObjectStore>,
    multipart: Arc<dyn MultipartStore>,
    signer: Arc<dyn Signer>,
    root: Path,
}

/// What an upload must remember between requests (serialized as its [`UploadState`]).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    /// The multipart upload, once the first part has been sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    multipart: Option<String>,
    /// Ids of the parts sent, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    parts: Vec<String>,
    /// Bytes after the parts, in order, not yet in a part.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    staged: Vec<Staged>,
}

/// A run of staged bytes: `len` bytes from `skip` in the object `uploads/<id>/staged/<name>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Staged {
    name: String,
    #[serde(default)]
    skip: u64,
    len: u64,
}

impl Progress {
    fn decode(state: &[u8]) -> Result<Progress, StoreError> {
        crate::decode_state(state)
    }

    fn encode(&self) -> UploadState {
        crate::encode_state(self)
    }

    fn staged_len(&self) -> u64 {
        self.staged.iter().map(|s| s.len).sum()
    }
}

fn backend(e: object_store::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Makes ring the process's TLS crypto provider, if none is yet. reqwest (under the object
/// store clients) is built without a bundled provider, so that one provider, the one the
/// database and Redis clients use too, serves the whole process; any HTTP client built in the
/// process needs this first.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The object store client's options: the proxy of `route` for the endpoint's scheme (and
/// never the environment's), and the CA certificates of `ca_pem` besides the public roots.
fn client_options(route: &Route, endpoint: Option<&str>, ca_pem: Option<&[u8]>) -> Result<ClientOptions, StoreError> {
    let scheme = if endpoint.is_some_and(|e| e.starts_with("http://")) { "http" } else { "https" };
    let mut options = match route.proxy_for(scheme) {
        Some(url) => ClientOptions::new().with_proxy_url(url).with_proxy_excludes(route.no_proxy()),
        // object_store's reqwest client reads `HTTP_PROXY` and friends itself unless given a
        // proxy: one that every host (names and addresses) bypasses turns that off, so that
        // a route without a proxy is direct.
        None => ClientOptions::new().with_proxy_url("http://127.0.0.1:9").with_proxy_excludes("*,0.0.0.0/0,::/0"),
    };
    if let Some(pem) = ca_pem {
        let certificates = object_store::Certificate::from_pem_bundle(pem)
            .map_err(|e| StoreError::Config(format!("storage.ca_file: {e}")))?;
        if certificates.is_empty() {
            return Err(StoreError::Config("storage.ca_file: no PEM certificate in it".into()));
        }
        for certificate in certificates {
            options = options.with_root_certificate(certificate);
        }
    }
    Ok(options)
}

fn root_path(root: &str) -> Result<Path, StoreError> {
    Path::parse(root.trim_matches('/')).map_err(|e| StoreError::Config(format!("storage root {root:?}: {e}")))
}

impl CloudStore {
    pub fn s3(options: &S3Options) -> Result<CloudStore, StoreError> {
        install_tls_provider();
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_client_options(client_options(
                &options.proxy,
                options.endpoint.as_deref(),
                options.ca_pem.as_deref(),
            )?)
            .with_bucket_name(&options.bucket)
            .with_virtual_hosted_style_request(!options.path_style);
        if let Some(region) = &options.region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &options.endpoint {
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        if let (Some(key), Some(secret)) = (&options.access_key, &options.secret_key) {
            builder = builder.with_access_key_id(key).with_secret_access_key(secret);
        }
        if let Some(token) = &options.session_token {
            builder = builder.with_token(token);
        }
        let s3 = Arc::new(builder.build().map_err(|e| StoreError::Config(e.to_string()))?);
        Ok(CloudStore {
            provider: "s3",
            objects: s3.clone(),
            multipart: s3.clone(),
            signer: s3,
            root: root_path(&options.root)?,
        })
    }

    pub fn gcs(options: &GcsOptions) -> Result<CloudStore, StoreError> {
        install_tls_provider();
        let mut builder = object_store::gcp::GoogleCloudStorageBuilder::from_env()
            .with_client_options(client_options(&options.proxy, None, options.ca_pem.as_deref())?)
            .with_bucket_name(&options.bucket);
        if let Some(file) = &options.credentials_file {
            builder = builder.with_service_account_path(file);
        }
        let gcs = Arc::new(builder.build().map_err(|e| StoreError::Config(e.to_string()))?);
        Ok(CloudStore {
            provider: "gcs",
            objects: gcs.clone(),
            multipart: gcs.clone(),
            signer: gcs,
            root: root_path(&options.root)?,
        })
    }

    pub fn azure(options: &AzureOptions) -> Result<CloudStore, StoreError> {
        install_tls_provider();
        let mut builder = object_store::azure::MicrosoftAzureBuilder::from_env()
            .with_client_options(client_options(
                &options.proxy,
                options.endpoint.as_deref(),
                options.ca_pem.as_deref(),
            )?)
            .with_account(&options.account_name)
            .with_container_name(&options.container);
        if let Some(key) = &options.account_key {
            builder = builder.with_access_key(key);
        }
        if let Some(endpoint) = &options.endpoint {
            builder = builder.with_endpoint(endpoint.clone()).with_allow_http(endpoint.starts_with("http://"));
        }
        let azure = Arc::new(builder.build().map_err(|e| StoreError::Config(e.to_string()))?);
        Ok(CloudStore {
            provider: "azure",
            objects: azure.clone(),
            multipart: azure.clone(),
            signer: azure,
            root: root_path(&options.root)?,
        })
    }

    fn blob_path(&self, digest: &Digest) -> Path {
        let hex = digest.hex();
        self.root.clone().join("blobs").join(digest.algorithm().as_str()).join(&hex[..2]).join(hex)
    }

    fn upload_dir(&self, id: &str) -> Result<Path, StoreError> {
        crate::check_upload_id(id)?;
        Ok(self.root.clone().join("uploads").join(id))
    }

    fn data_path(&self, id: &str) -> Result<Path, StoreError> {
        Ok(self.upload_dir(id)?.join("data"))
    }

    fn staged_path(&self, id: &str, name: &str) -> Result<Path, StoreError> {
        Ok(self.upload_dir(id)?.join("staged").join(name))
    }

    async fn size_of(&self, path: &Path) -> Result<Option<u64>, StoreError> {
        match self.objects.head(path).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    /// The first `n` staged bytes, removed from `progress.staged` (the objects stay: a recorded
    /// state may still name them).
    async fn take_staged(&self, id: &str, progress: &mut Progress, mut n: u64) -> Result<Vec<Bytes>, StoreError> {
        let mut out = Vec::new();
        while n > 0 {
            let Some(first) = progress.staged.first_mut() else {
                return Err(StoreError::Backend(format!("upload {id}: fewer staged bytes than its state says")));
            };
            let take = first.len.min(n);
            let path = self.staged_path(id, &first.name)?;
            let range = GetRange::Bounded(first.skip..first.skip + take);
            let result = self
                .objects
                .get_opts(&path, GetOptions { range: Some(range), ..GetOptions::default() })
                .await
                .map_err(|e| match e {
                    object_store::Error::NotFound { .. } => StoreError::UploadNotFound(id.to_string()),
                    e => backend(e),
                })?;
            let bytes = result.bytes().await.map_err(backend)?;
            if bytes.len() as u64 != take {
                return Err(StoreError::Backend(format!("upload {id}: a staged object is shorter than recorded")));
            }
            out.push(bytes);
            first.skip += take;
            first.len -= take;
            if first.len == 0 {
                progress.staged.remove(0);
            }
            n -= take;
        }
        Ok(out)
    }

    /// Assembles the parts and staged bytes of an upload that has a multipart upload into
    /// `uploads/<id>/data`.
    async fn assemble(&self, id: &str, progress: &mut Progress) -> Result<(), StoreError> {
        let mut parts = PartQueue::new(self, id)?;
        while progress.staged_len() > 0 {
            let n = progress.staged_len().min(PART_SIZE as u64);
            let chunks = self.take_staged(id, progress, n).await?;
            parts.send(progress, chunks).await?;
        }
        parts.finish(progress).await?;
        // Callers assemble only uploads that have a multipart upload.
        let Some(multipart) = progress.multipart.clone() else {
            return Err(StoreError::Backend(format!("upload {id} has no multipart upload to assemble")));
        };
        let parts = progress.parts.iter().map(|p| PartId { content_id: p.clone() }).collect();
        self.multipart.complete_multipart(&self.data_path(id)?, &multipart, parts).await.map_err(|e| match e {
            // The multipart upload is gone: completed (and perhaps published) by an earlier
            // attempt, or aborted.
            object_store::Error::NotFound { .. } => StoreError::UploadNotFound(id.to_string()),
            e => backend(e),
        })?;
        Ok(())
    }

    /// Copies an object, server-side when the store allows it for this size.
    async fn copy(&self, from: &Path, to: &Path, size: u64) -> Result<(), StoreError> {
        if size <= MAX_SINGLE_COPY {
            return self.objects.copy(from, to).await.map_err(backend);
        }
        let upload = self.objects.put_multipart(to).await.map_err(backend)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut stream = self.objects.get(from).await.map_err(backend)?.into_stream();
        while let Some(chunk) = stream.next().await {
            writer.wait_for_capacity(2).await.map_err(backend)?;
            writer.put(chunk.map_err(backend)?);
        }
        writer.finish().await.map_err(backend)?;
        Ok(())
    }

    /// Deletes everything an upload left: staged objects and the assembled data.
    async fn remove_upload_objects(&self, id: &str) -> Result<(), StoreError> {
        let dir = self.upload_dir(id)?;
        let locations = self.objects.list(Some(&dir)).map_ok(|meta| meta.location).boxed();
        let mut deleted = self.objects.delete_stream(locations);
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(backend(e)),
            }
        }
        Ok(())
    }

    async fn hash_object(&self, path: &Path, algorithm: Algorithm) -> Result<Digest, StoreError> {
        let mut stream = self.objects.get(path).await.map_err(backend)?.into_stream();
        let mut hasher = Hasher::new(algorithm);
        while let Some(chunk) = stream.next().await {
            hasher.update(&chunk.map_err(backend)?);
        }
        Ok(hasher.finish())
    }
}

/// Parts being sent: up to [`PARTS_IN_FLIGHT`] at once, so that receiving the next part from
/// the client overlaps sending the last to the store. Their ids join the progress in order.
struct PartQueue {
    multipart: Arc<dyn MultipartStore>,
    id: String,
    path: Path,
    in_flight: std::collections::VecDeque<tokio::task::JoinHandle<Result<String, StoreError>>>,
}

/// Two parts in flight: what one upload holds in memory stays near three parts.
const PARTS_IN_FLIGHT: usize = 2;

impl PartQueue {
    fn new(store: &CloudStore, id: &str) -> Result<PartQueue, StoreError> {
        Ok(PartQueue {
            multipart: store.multipart.clone(),
            id: id.to_string(),
            path: store.data_path(id)?,
            in_flight: Default::default(),
        })
    }

    /// Starts sending the next part (starting the multipart upload first if this is the first).
    async fn send(&mut self, progress: &mut Progress, chunks: Vec<Bytes>) -> Result<(), StoreError> {
        let multipart = match &progress.multipart {
            Some(m) => m.clone(),
            None => {
                let m = self.multipart.create_multipart(&self.path).await.map_err(backend)?;
                progress.multipart = Some(m.clone());
                m
            }
        };
        let index = progress.parts.len() + self.in_flight.len();
        if index >= MAX_PARTS {
            return Err(StoreError::Backend(format!("upload {} is larger than object storage allows", self.id)));
        }
        let (store, path, id) = (self.multipart.clone(), self.path.clone(), self.id.clone());
        let payload: PutPayload = chunks.into_iter().collect();
        self.in_flight.push_back(tokio::spawn(async move {
            match store.put_part(&path, &multipart, index, payload).await {
                Ok(part) => Ok(part.content_id),
                Err(object_store::Error::NotFound { .. }) => Err(StoreError::UploadNotFound(id)),
                Err(e) => Err(backend(e)),
            }
        }));
        while self.in_flight.len() > PARTS_IN_FLIGHT {
            self.complete_one(progress).await?;
        }
        Ok(())
    }

    async fn complete_one(&mut self, progress: &mut Progress) -> Result<(), StoreError> {
        if let Some(task) = self.in_flight.pop_front() {
            let id = task.await.map_err(|e| StoreError::Backend(format!("sending a part: {e}")))??;
            progress.parts.push(id);
        }
        Ok(())
    }

    /// Waits for every part sent; the progress then names them all.
    async fn finish(mut self, progress: &mut Progress) -> Result<(), StoreError> {
        while !self.in_flight.is_empty() {
            self.complete_one(progress).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl BlobStore for CloudStore {
    fn provider_name(&self) -> &'static str {
        self.provider
    }

    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        self.size_of(&self.blob_path(digest)).await
    }

    async fn get(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobBody, StoreError> {
        let options =
            GetOptions { range: range.map(|r| GetRange::Bounded(r.start..r.end + 1)), ..GetOptions::default() };
        let result = self.objects.get_opts(&self.blob_path(digest), options).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => StoreError::NotFound(digest.clone()),
            e => backend(e),
        })?;
        let len = result.range.end - result.range.start;
        let stream = result.into_stream().map_err(|e| e.to_string()).boxed();
        Ok(BlobBody::Stream { stream, len })
    }

    async fn put(&self, digest: &Digest, bytes: Bytes) -> Result<(), StoreError> {
        let actual = Digest::of(digest.algorithm(), &bytes);
        if &actual != digest {
            return Err(StoreError::DigestMismatch { expected: digest.clone(), actual });
        }
        // One PUT is atomic: readers see the whole object or none.
        self.objects.put(&self.blob_path(digest), bytes.into()).await.map_err(backend)?;
        Ok(())
    }

    async fn delete(&self, digest: &Digest) -> Result<(), StoreError> {
        match self.objects.delete(&self.blob_path(digest)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete_many(&self, digests: &[Digest], _concurrency: usize) -> Result<(), StoreError> {
        // object_store's bulk delete, which sets its own concurrency: S3's DeleteObjects (1,000
        // keys a request), Azure's blob batch; GCS deletes one by one inside it.
        let paths: Vec<object_store::Result<Path>> = digests.iter().map(|d| Ok(self.blob_path(d))).collect();
        let mut deleted = self.objects.delete_stream(futures_util::stream::iter(paths).boxed());
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(backend(e)),
            }
        }
        Ok(())
    }

    fn walk_blobs(&self, prefix: &BlobPrefix) -> BlobWalk {
        let mut dir = self.root.clone().join("blobs").join(prefix.algorithm().as_str());
        if let Some(shard) = prefix.shard() {
            dir = dir.join(shard);
        }
        let prefix = prefix.clone();
        let listed = self.objects.list(Some(&dir));
        Box::pin(listed.filter_map(move |meta| {
            let found = match meta {
                Ok(meta) => {
                    let key = meta.location.as_ref();
                    let mut segments = key.rsplit('/');
                    let (name, shard) = (segments.next().unwrap_or(""), segments.next().unwrap_or(""));
                    prefix
                        .covers(shard, name)
                        .map(|digest| Ok(StoredBlob { digest, size: meta.size, modified: meta.last_modified.into() }))
                }
                Err(e) => Some(Err(backend(e))),
            };
            std::future::ready(found)
        }))
    }

    async fn upload_start(&self, id: &str) -> Result<UploadState, StoreError> {
        self.upload_dir(id)?;
        // The multipart upload starts with the first full part: most blobs never need one.
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
        let mut parts = PartQueue::new(self, id)?;
        let mut worker_hasher = hasher.clone();
        let mut pending = BytesMut::new();
        let mut received = 0u64;
        loop {
            let chunk = match body.next().await {
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => return Err(StoreError::Body(e)),
                None => break,
            };
            worker_hasher.update(&chunk);
            received += chunk.len() as u64;
            pending.extend_from_slice(&chunk);
            // Full parts go out as soon as they are full, staged bytes first.
            while progress.staged_len() + pending.len() as u64 >= PART_SIZE as u64 {
                let from_staged = progress.staged_len().min(PART_SIZE as u64);
                let mut chunks = self.take_staged(id, &mut progress, from_staged).await?;
                let from_pending = PART_SIZE - from_staged as usize;
                if from_pending > 0 {
                    chunks.push(pending.split_to(from_pending).freeze());
                }
                parts.send(&mut progress, chunks).await?;
            }
        }
        // What is left: a part if large enough, else a new staged object.
        let left = progress.staged_len() + pending.len() as u64;
        if left >= MIN_PART as u64 {
            let staged = progress.staged_len();
            let mut chunks = self.take_staged(id, &mut progress, staged).await?;
            chunks.push(pending.freeze());
            parts.send(&mut progress, chunks).await?;
        } else if !pending.is_empty() {
            let name = uuid::Uuid::new_v4().simple().to_string();
            let len = pending.len() as u64;
            self.objects.put(&self.staged_path(id, &name)?, pending.freeze().into()).await.map_err(backend)?;
            progress.staged.push(Staged { name, skip: 0, len });
        }
        parts.finish(&mut progress).await?;
        *hasher = worker_hasher;
        Ok(Appended { offset: offset + received, state: progress.encode() })
    }

    async fn upload_commit(&self, id: &str, size: u64, state: &[u8], digest: &Digest) -> Result<(), StoreError> {
        let mut progress = Progress::decode(state)?;
        let blob = self.blob_path(digest);
        let data = self.data_path(id)?;
        // Already assembled: by a rehash, or by a commit that was interrupted before its end
        // (only an upload with a multipart upload is ever assembled).
        let assembled = progress.multipart.is_some() && self.size_of(&data).await? == Some(size);
        if self.size_of(&blob).await?.is_some() {
            // The same content is already published (pushed twice, or an interrupted commit
            // got this far): the upload's parts are not needed.
            if let Some(multipart) = &progress.multipart
                && !assembled
            {
                let _ = self.multipart.abort_multipart(&data, multipart).await;
            }
        } else if assembled {
            self.copy(&data, &blob, size).await?;
        } else if progress.multipart.is_some() {
            self.assemble(id, &mut progress).await?;
            self.copy(&data, &blob, size).await?;
        } else {
            // A small blob never had a part (fewer than MIN_PART bytes in all): one staged
            // object is copied, several are joined.
            match progress.staged.as_slice() {
                [only] if only.skip == 0 && only.len == size => {
                    let from = self.staged_path(id, &only.name)?;
                    match self.objects.copy(&from, &blob).await {
                        Ok(()) => {}
                        Err(object_store::Error::NotFound { .. }) => {
                            return Err(StoreError::UploadNotFound(id.to_string()));
                        }
                        Err(e) => return Err(backend(e)),
                    }
                }
                _ => {
                    let n = progress.staged_len();
                    if n != size {
                        return Err(StoreError::Backend(format!("upload {id} holds {n} bytes, not {size}")));
                    }
                    let chunks = self.take_staged(id, &mut progress, n).await?;
                    let payload: PutPayload = chunks.into_iter().collect();
                    self.objects.put(&blob, payload).await.map_err(backend)?;
                }
            }
        }
        self.remove_upload_objects(id).await
    }

    async fn upload_rehash(
        &self,
        id: &str,
        size: u64,
        state: &[u8],
        algorithm: Algorithm,
    ) -> Result<Digest, StoreError> {
        let mut progress = Progress::decode(state)?;
        if progress.multipart.is_none() {
            // Only staged bytes (fewer than a part): read them.
            let mut hasher = Hasher::new(algorithm);
            let n = progress.staged_len();
            for chunk in self.take_staged(id, &mut progress, n).await? {
                hasher.update(&chunk);
            }
            return Ok(hasher.finish());
        }
        let data = self.data_path(id)?;
        if self.size_of(&data).await? != Some(size) {
            // Parts cannot be read before they are assembled.
            self.assemble(id, &mut progress).await?;
        }
        self.hash_object(&data, algorithm).await
    }

    async fn upload_abort(&self, id: &str, state: &[u8]) -> Result<(), StoreError> {
        let progress = Progress::decode(state)?;
        if let Some(multipart) = &progress.multipart
            && let Err(e) = self.multipart.abort_multipart(&self.data_path(id)?, multipart).await
        {
            // Gone already (aborted or completed before), or the store refuses: the session is
            // over either way. Parts left behind cost space until the bucket's lifecycle rule
            // for incomplete multipart uploads removes them.
            tracing::debug!(upload = id, error = %e, "aborting the multipart upload");
        }
        self.remove_upload_objects(id).await
    }

    async fn check(&self) -> Result<(), StoreError> {
        // One request that needs the bucket and the credentials, and finds nothing (a HEAD of
        // a missing key would not tell a missing bucket from a missing key).
        let probe = self.root.clone().join("health-probe");
        self.objects.list_with_delimiter(Some(&probe)).await.map(|_| ()).map_err(backend)
    }

    async fn presigned_get(&self, digest: &Digest, ttl: Duration) -> Result<Option<String>, StoreError> {
        let url = self
            .signer
            .signed_url(object_store::signer::Method::GET, &self.blob_path(digest), ttl)
            .await
            .map_err(backend)?;
        Ok(Some(url.to_string()))
    }
}
