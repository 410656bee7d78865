//! The distribution operations.

use std::sync::Arc;

use crate::cache::{Caches, Coherence};
use crate::pulls::PullRecorder;
use berth_db::gc::BlobPin;
use berth_db::{Db, ManifestRow, UploadRow};
use berth_oci::manifest::Descriptor;
use berth_oci::range::ByteRange;
use berth_oci::{Algorithm, Digest, ErrorCode, Hasher, Reference, RepositoryName};
use berth_store::{BlobBody, BlobStore, ByteStream, StoreError};
use bytes::Bytes;

use crate::RegistryError;

/// Most entries a listing returns when the client does not ask for fewer.
pub const MAX_PAGE: i64 = 10_000;

pub struct Registry {
    db: Db,
    pub(crate) store: Arc<dyn BlobStore>,
    /// One in-process turn per upload session, so that two requests on the same session do not
    /// interleave their bytes. Across processes the conditional offset update in the database
    /// refuses the second writer.
    upload_turns: crate::turns::Turns<String>,
    pulls: Arc<PullRecorder>,
    shared: Option<crate::shared::SharedState>,
    /// When set, blob GETs answer with a redirect to a presigned URL valid this long.
    blob_redirect: Option<std::time::Duration>,
    caches: Caches,
    /// The door every change to a repository's content goes through.
    content: crate::content::Content,
    /// Bytes of whole-blob uploads held in memory at once (see `blob_upload_whole`).
    whole_blob_budget: Arc<tokio::sync::Semaphore>,
    /// The system configuration.
    settings: crate::settings::SystemSettings,
}

/// The largest blob a monolithic upload receives into memory and stores with one write.
const WHOLE_BLOB_MAX: u64 = 4 << 20;
/// What all of them may hold at once; beyond it, they go through a session as large ones do.
const WHOLE_BLOB_BUDGET_KIB: usize = 64 << 10;

/// A blob about to be sent.
pub struct BlobRead {
    pub digest: Digest,
    /// Size of the whole blob.
    pub size: u64,
    pub body: BlobBody,
}

/// Who reads a manifest, as far as the project's pull policies care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Puller {
    /// Anyone: the policies hold.
    Client,
    /// A signing client (cosign, notation) whose caller may push to the repository: Harbor's
    /// `SkipPolicyChecking`, so that an image held back can still be signed.
    SigningClient,
}

/// A manifest as stored, with its bytes when they were asked for.
pub struct ManifestRead {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub bytes: Option<Bytes>,
}

/// Where an upload session stands.
pub struct UploadStatus {
    pub id: String,
    /// Bytes received and durable.
    pub offset: u64,
}

/// One page of a lexically ordered listing, and whether more follows.
pub struct Page {
    pub items: Vec<String>,
    pub more: bool,
}

fn name_unknown(name: &RepositoryName) -> RegistryError {
    RegistryError::client(ErrorCode::NameUnknown, format!("repository {name} is not known"))
}

fn upload_unknown(id: &str) -> RegistryError {
    RegistryError::client(ErrorCode::BlobUploadUnknown, format!("upload {id} is not known"))
}

impl Registry {
    pub fn new(db: Db, store: Arc<dyn BlobStore>) -> Registry {
        let pulls = Arc::new(PullRecorder::new(db.clone()));
        let db_for_settings = db.clone();
        // An external database may have other replicas writing it; nothing tells of their
        // writes until Redis does (`with_shared`).
        let coherence = match db.dialect() {
            berth_db::Dialect::Sqlite => Coherence::Alone,
            berth_db::Dialect::Postgres => Coherence::Blind,
        };
        let caches = Caches::new(coherence, None);
        let store = crate::metered_store::MeteredStore::wrap(store);
        let content = crate::content::Content::new(db.clone(), store.clone(), caches.clone());
        // Immutable tags are Harbor's rule for every project: held at the door from the start.
        content.add_policy(std::sync::Arc::new(crate::immutable::Immutability::new(db.clone())));
        Registry {
            db,
            store,
            content,
            upload_turns: Default::default(),
            pulls,
            shared: None,
            blob_redirect: None,
            caches,
            whole_blob_budget: Arc::new(tokio::sync::Semaphore::new(WHOLE_BLOB_BUDGET_KIB)),
            settings: crate::settings::SystemSettings::new(db_for_settings, Default::default(), Default::default()),
        }
    }

    /// With the configuration file's starting values and pins of the system configuration, and
    /// how its audit forward endpoint is reached.
    pub fn with_settings(
        mut self,
        start: crate::settings::StartingSettings,
        forward: crate::settings::ForwardOptions,
    ) -> Registry {
        self.settings = crate::settings::SystemSettings::new(self.db.clone(), start, forward);
        self
    }

    /// The system configuration (`/configurations`).
    pub fn settings(&self) -> &crate::settings::SystemSettings {
        &self.settings
    }

    /// With Redis shared by the replicas: cache invalidations travel through it.
    pub fn with_shared(mut self, shared: crate::shared::SharedState) -> Registry {
        self.caches = Caches::new(Coherence::Redis, Some(shared.clone()));
        self.content = self.content.with_caches(self.caches.clone());
        self.shared = Some(shared);
        self
    }

    /// The door for every change to a repository's content (manifests, tags, artifacts,
    /// repositories); its policies and subscribers are the process's.
    pub fn content(&self) -> &crate::content::Content {
        &self.content
    }

    /// The caches every service of this process must share (and tell of its writes).
    pub fn caches(&self) -> &Caches {
        &self.caches
    }

    /// Blob GETs answered with a redirect to the storage (a URL valid for `ttl`), so that the
    /// bytes bypass the replicas, where the store can sign such URLs.
    pub fn with_blob_redirect(mut self, ttl: std::time::Duration) -> Registry {
        self.blob_redirect = Some(ttl);
        self
    }

    pub fn shared(&self) -> Option<&crate::shared::SharedState> {
        self.shared.as_ref()
    }

    /// Pull statistics noted by manifest GETs; the owner of the registry runs its flushing.
    pub fn pulls(&self) -> &Arc<PullRecorder> {
        &self.pulls
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The blob store, for the garbage collector's sweep (it walks and deletes what no row
    /// names; everything else reaches storage through the registry's own operations).
    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }

    /// Total and free bytes of the blob volume, where the storage backend has one.
    pub async fn storage_capacity(&self) -> Result<Option<(u64, u64)>, RegistryError> {
        Ok(self.store.capacity().await?)
    }

    /// The repository's id, creating it on first push (inside its project, which must exist).
    async fn ensure_repository(&self, name: &RepositoryName) -> Result<i64, RegistryError> {
        self.content.ensure_repository(name).await
    }

    async fn repository(&self, name: &RepositoryName) -> Result<i64, RegistryError> {
        if let Some(id) = self.caches.repository_id(name.as_str()) {
            return Ok(id);
        }
        let generation = self.caches.generation();
        let id = self.db.repository_id(name.as_str()).await?.ok_or_else(|| name_unknown(name))?;
        self.caches.put_repository_id(generation, name.as_str(), id);
        Ok(id)
    }

    // ---- blobs

    /// The size of a blob the repository may serve.
    pub async fn blob_size(&self, name: &RepositoryName, digest: &Digest) -> Result<u64, RegistryError> {
        let repo = self.repository(name).await?;
        match self.db.repository_blob_size(repo, digest.as_str()).await? {
            Some(size) => Ok(size as u64),
            None => Err(RegistryError::client(ErrorCode::BlobUnknown, format!("blob {digest} is not in {name}"))),
        }
    }

    /// Opens a blob, or a range of it that the caller has checked against the size.
    pub async fn blob_read(
        &self,
        name: &RepositoryName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<BlobRead, RegistryError> {
        let size = self.blob_size(name, digest).await?;
        let body = match self.store.get(digest, range).await {
            Ok(b) => b,
            Err(StoreError::NotFound(_)) => {
                return Err(RegistryError::Internal(format!("blob {digest} is recorded but missing from storage")));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(BlobRead { digest: digest.clone(), size, body })
    }

    /// Where to send a client for the blob's bytes instead of sending them, when redirects
    /// are on and the store can sign a URL. The caller has checked the blob is in the repository.
    pub async fn blob_redirect(&self, digest: &Digest) -> Result<Option<String>, RegistryError> {
        let Some(ttl) = self.blob_redirect else {
            return Ok(None);
        };
        Ok(self.store.presigned_get(digest, ttl).await?)
    }

    /// The storage backend's name as Harbor reports it.
    pub fn storage_provider(&self) -> &'static str {
        self.store.provider_name()
    }

    /// Whether blob storage answers (for readiness).
    pub async fn storage_check(&self) -> Result<(), RegistryError> {
        Ok(self.store.check().await?)
    }

    /// Removes a blob from a repository (its bytes go when garbage collection finds them
    /// unreferenced).
    pub async fn blob_delete(&self, name: &RepositoryName, digest: &Digest) -> Result<(), RegistryError> {
        let repo = self.repository(name).await?;
        if self.db.unlink_blob(repo, digest.as_str()).await? {
            Ok(())
        } else {
            Err(RegistryError::client(ErrorCode::BlobUnknown, format!("blob {digest} is not in {name}")))
        }
    }

    /// Repositories from which `digest` could be mounted.
    pub async fn blob_sources(&self, digest: &Digest) -> Result<Vec<String>, RegistryError> {
        Ok(self.db.repositories_with_blob(digest.as_str()).await?)
    }

    /// Makes a blob of `from` available in `name` without uploading it again. Returns its size,
    /// or `None` when `from` does not hold it.
    pub async fn blob_mount(
        &self,
        name: &RepositoryName,
        digest: &Digest,
        from: &RepositoryName,
    ) -> Result<Option<u64>, RegistryError> {
        let Some(from_id) = self.db.repository_id(from.as_str()).await? else {
            return Ok(None);
        };
        let Some(size) = self.db.repository_blob_size(from_id, digest.as_str()).await? else {
            return Ok(None);
        };
        if self.store.stat(digest).await?.is_none() {
            return Ok(None);
        }
        let repo = self.ensure_repository(name).await?;
        // A blob a collection condemned since the lookup is not mounted: the client uploads it.
        if !self.db.link_stored_blob(repo, digest.as_str()).await? {
            return Ok(None);
        }
        Ok(Some(size as u64))
    }

    // ---- uploads

    /// A monolithic upload: the whole blob in one request, `length` bytes when the client said.
    /// A small one is received into memory and stored with one write and one commit, with no
    /// session (a session's row, file and their syncs are most of the cost of a small blob);
    /// anything else goes through a session that does not outlive the request.
    pub async fn blob_upload_whole(
        &self,
        name: &RepositoryName,
        digest: &Digest,
        length: Option<u64>,
        body: Option<ByteStream>,
    ) -> Result<u64, RegistryError> {
        let permit = match length {
            Some(len) if len <= WHOLE_BLOB_MAX => {
                self.whole_blob_budget.clone().try_acquire_many_owned(len.div_ceil(1024).max(1) as u32).ok()
            }
            _ => None,
        };
        let (Some(_permit), Some(len)) = (permit, length) else {
            let st = self.upload_start(name).await?;
            return match self.upload_finish(name, &st.id, digest, None, body).await {
                Ok(size) => Ok(size),
                Err(e) => {
                    // Nothing of a failed monolithic upload remains.
                    let _ = self.upload_cancel(name, &st.id).await;
                    Err(e)
                }
            };
        };
        let bytes = match body {
            Some(body) => receive_whole(body, len).await?,
            None => Bytes::new(),
        };
        if bytes.len() as u64 != len {
            return Err(RegistryError::client(
                ErrorCode::SizeInvalid,
                format!("Content-Length announced {len} bytes, body had {}", bytes.len()),
            ));
        }
        let repo = self.ensure_repository(name).await?;
        // Refused by the quota before the bytes are written, not only after.
        self.db.quota_allows(repo, digest.as_str(), len as i64).await?;
        let pin = self.db.pin_blob(digest.as_str()).await?;
        let stored = match self.store.put(digest, bytes).await {
            Ok(()) => self.db.link_blob(repo, digest.as_str(), len as i64, &pin).await.map_err(RegistryError::from),
            Err(StoreError::DigestMismatch { actual, .. }) => Err(RegistryError::client(
                ErrorCode::DigestInvalid,
                format!("uploaded content has digest {actual}, not {digest}"),
            )),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = stored {
            self.unpin(&pin).await;
            return Err(e);
        }
        Ok(len)
    }

    pub async fn upload_start(&self, name: &RepositoryName) -> Result<UploadStatus, RegistryError> {
        let repo = self.ensure_repository(name).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let store_state = self.store.upload_start(&id).await?;
        let hasher = Hasher::new(Algorithm::Sha256);
        self.db
            .create_upload(&UploadRow {
                id: id.clone(),
                repository_id: repo,
                algorithm: Algorithm::Sha256.as_str().to_string(),
                offset: 0,
                hash_state: hasher.save(),
                store_state,
                created_at: berth_db::now_millis(),
            })
            .await?;
        Ok(UploadStatus { id, offset: 0 })
    }

    async fn upload_row(&self, name: &RepositoryName, id: &str) -> Result<UploadRow, RegistryError> {
        let repo = self.repository(name).await.map_err(|_| upload_unknown(id))?;
        match self.db.upload(id).await? {
            Some(row) if row.repository_id == repo => Ok(row),
            _ => Err(upload_unknown(id)),
        }
    }

    fn upload_turn(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.upload_turns.turn(id.to_string())
    }

    pub async fn upload_status(&self, name: &RepositoryName, id: &str) -> Result<UploadStatus, RegistryError> {
        let row = self.upload_row(name, id).await?;
        Ok(UploadStatus { id: row.id, offset: row.offset as u64 })
    }

    fn restore_hasher(row: &UploadRow) -> Result<Hasher, RegistryError> {
        let algorithm: Algorithm =
            row.algorithm.parse().map_err(|e: berth_oci::DigestError| RegistryError::Internal(e.to_string()))?;
        Hasher::restore(algorithm, &row.hash_state).map_err(|e| RegistryError::Internal(e.to_string()))
    }

    /// Appends a chunk. `range` is the chunk's `Content-Range`, when the client sent one: it
    /// must start at the current offset, and the body must be as long as it says.
    pub async fn upload_append(
        &self,
        name: &RepositoryName,
        id: &str,
        range: Option<ByteRange>,
        body: ByteStream,
    ) -> Result<UploadStatus, RegistryError> {
        let turn = self.upload_turn(id);
        let _turn = turn.lock().await;
        let row = self.upload_row(name, id).await?;
        let offset = row.offset as u64;
        if let Some(r) = range
            && r.start != offset
        {
            return Err(RegistryError::UploadOutOfOrder { offset });
        }
        let mut hasher = Self::restore_hasher(&row)?;
        let appended = self.store.upload_append(id, offset, &row.store_state, &mut hasher, body).await?;
        let new_offset = appended.offset;
        if let Some(r) = range
            && new_offset - offset != r.len()
        {
            // The bytes past `offset` are not recorded, so the next append discards them.
            return Err(RegistryError::client(
                ErrorCode::SizeInvalid,
                format!("Content-Range announced {} bytes, body had {}", r.len(), new_offset - offset),
            ));
        }
        if !self.db.advance_upload(id, row.offset, new_offset as i64, &hasher.save(), &appended.state).await? {
            let now = self.upload_row(name, id).await?;
            return Err(RegistryError::UploadOutOfOrder { offset: now.offset as u64 });
        }
        Ok(UploadStatus { id: id.to_string(), offset: new_offset })
    }

    /// Completes an upload with its last chunk (possibly empty), verifying the whole content
    /// against `digest` before the blob becomes visible.
    pub async fn upload_finish(
        &self,
        name: &RepositoryName,
        id: &str,
        digest: &Digest,
        range: Option<ByteRange>,
        body: Option<ByteStream>,
    ) -> Result<u64, RegistryError> {
        let turn = self.upload_turn(id);
        let _turn = turn.lock().await;
        let row = self.upload_row(name, id).await?;
        let mut offset = row.offset as u64;
        if let Some(r) = range
            && r.start != offset
        {
            return Err(RegistryError::UploadOutOfOrder { offset });
        }
        let mut hasher = Self::restore_hasher(&row)?;
        let mut state = row.store_state.clone();
        if let Some(body) = body {
            let appended = self.store.upload_append(id, offset, &state, &mut hasher, body).await?;
            (offset, state) = (appended.offset, appended.state);
        }
        if let Some(r) = range
            && offset - r.start != r.len()
        {
            // The bytes past the recorded offset are not recorded: the next append drops them.
            return Err(RegistryError::client(
                ErrorCode::SizeInvalid,
                format!("Content-Range announced {} bytes, body had {}", r.len(), offset - r.start),
            ));
        }
        let hash_state = hasher.save();
        let rehashed = hasher.algorithm() != digest.algorithm();
        let actual = if rehashed {
            match self.store.upload_rehash(id, offset, &state, digest.algorithm()).await {
                Ok(d) => d,
                Err(StoreError::UploadNotFound(_)) => {
                    let pin = self.db.pin_blob(digest.as_str()).await?;
                    let finished = self.finish_interrupted(row, digest, &pin).await;
                    if finished.is_err() {
                        self.unpin(&pin).await;
                    }
                    return finished;
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            hasher.finish()
        };
        if &actual != digest {
            let message = format!("uploaded content has digest {actual}, not {digest}");
            if rehashed {
                // Reading it again may have assembled it for good (object stores cannot read
                // parts otherwise): the session ends, and the client starts again.
                self.db.delete_upload(id).await?;
                self.store.upload_abort(id, &state).await?;
                return Err(RegistryError::client(ErrorCode::DigestInvalid, format!("{message}; the upload is ended")));
            }
            // The final chunk's bytes are not recorded: the session stands where it stood.
            return Err(RegistryError::client(ErrorCode::DigestInvalid, message));
        }
        // What this session received and hashed, recorded before the bytes are published: a
        // finish interrupted after publishing is completed later only against this record
        // (see `finish_interrupted`), never against whatever blob a client names.
        if (offset != row.offset as u64 || state != row.store_state)
            && !self.db.advance_upload(id, row.offset, offset as i64, &hash_state, &state).await?
        {
            let now = self.upload_row(name, id).await?;
            return Err(RegistryError::UploadOutOfOrder { offset: now.offset as u64 });
        }
        // Refused by the quota before the bytes are published, not only after.
        self.db.quota_allows(row.repository_id, digest.as_str(), offset as i64).await?;
        let pin = self.db.pin_blob(digest.as_str()).await?;
        let committed = match self.store.upload_commit(id, offset, &state, digest).await {
            Ok(()) => self
                .db
                .complete_upload(id, row.repository_id, digest.as_str(), offset as i64, &pin)
                .await
                .map(|()| offset)
                .map_err(RegistryError::from),
            Err(StoreError::UploadNotFound(_)) => match self.upload_row(name, id).await {
                Ok(row) => self.finish_interrupted(row, digest, &pin).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e.into()),
        };
        if committed.is_err() {
            self.unpin(&pin).await;
        }
        committed
    }

    /// A finish whose bytes were published before the process stopped (or the request was
    /// dropped), but whose session was not yet closed in the database: close it now, if and
    /// only if the blob under `digest` holds exactly what this session received. The session's
    /// record has its length and its hash state: the stored blob must have that length, and
    /// its digest in the session's algorithm must be the one the recorded state finishes to.
    /// Anything else is a digest the client names without having sent its bytes.
    /// `pin` is held on `digest` (taken before its bytes are looked at, so that a collection
    /// cannot delete them after the look).
    async fn finish_interrupted(&self, row: UploadRow, digest: &Digest, pin: &BlobPin) -> Result<u64, RegistryError> {
        let received = Self::restore_hasher(&row)?.finish();
        let foreign = || {
            RegistryError::client(
                ErrorCode::DigestInvalid,
                format!("the content of upload {} does not have digest {digest}", row.id),
            )
        };
        let Some(size) = self.store.stat(digest).await? else {
            return Err(RegistryError::Internal(format!("upload {} lost its bytes", row.id)));
        };
        if size != row.offset as u64 {
            return Err(foreign());
        }
        let stored = if digest.algorithm() == received.algorithm() {
            digest.clone()
        } else {
            self.hash_stored(digest, received.algorithm()).await?
        };
        if stored != received {
            return Err(foreign());
        }
        self.db.complete_upload(&row.id, row.repository_id, digest.as_str(), size as i64, pin).await?;
        Ok(size)
    }

    /// Removes the pin of a write that failed; one left behind only delays a collection of
    /// its digest by `db::gc::PIN_LEASE_MS`.
    pub(crate) async fn unpin(&self, pin: &BlobPin) {
        if let Err(e) = self.db.unpin_blob(pin).await {
            tracing::warn!(digest = %pin.digest, error = %e, "a failed write's pin was left");
        }
    }

    /// The digest in `algorithm` of the blob stored under `digest`.
    async fn hash_stored(&self, digest: &Digest, algorithm: Algorithm) -> Result<Digest, RegistryError> {
        Ok(self.fold_blob(digest, Hasher::new(algorithm), |h, chunk| h.update(chunk)).await?.finish())
    }

    pub async fn upload_cancel(&self, name: &RepositoryName, id: &str) -> Result<(), RegistryError> {
        let turn = self.upload_turn(id);
        let _turn = turn.lock().await;
        let row = self.upload_row(name, id).await?;
        self.db.delete_upload(&row.id).await?;
        self.store.upload_abort(&row.id, &row.store_state).await?;
        Ok(())
    }

    // ---- manifests

    async fn find_manifest(
        &self,
        name: &RepositoryName,
        repo: i64,
        reference: &Reference,
    ) -> Result<Option<ManifestRow>, RegistryError> {
        let key = reference.to_string();
        if let Some(row) = self.caches.manifest(name.as_str(), &key) {
            return Ok(Some(row));
        }
        let generation = self.caches.generation();
        let row = match reference {
            Reference::Tag(t) => self.db.manifest_by_tag(repo, t.as_str()).await?,
            Reference::Digest(d) => self.db.manifest_by_digest(repo, d.as_str()).await?,
        };
        if let Some(row) = &row {
            self.caches.put_manifest(generation, name.as_str(), &key, row);
        }
        Ok(row)
    }

    /// Looks a manifest up, reading its bytes when `with_bytes` (a GET, which counts as a pull,
    /// as in Harbor; a HEAD does not).
    pub async fn manifest_read(
        &self,
        name: &RepositoryName,
        reference: &Reference,
        with_bytes: bool,
    ) -> Result<ManifestRead, RegistryError> {
        self.manifest_read_by(name, reference, with_bytes, Puller::Client).await
    }

    /// [`Registry::manifest_read`] by `puller`: a signing client that may push is not held by
    /// the project's pull policies, as in Harbor (it must read a manifest to sign it).
    pub async fn manifest_read_by(
        &self,
        name: &RepositoryName,
        reference: &Reference,
        with_bytes: bool,
        puller: Puller,
    ) -> Result<ManifestRead, RegistryError> {
        let repo = self.repository(name).await?;
        let row = self.find_manifest(name, repo, reference).await?.ok_or_else(|| {
            RegistryError::client(ErrorCode::ManifestUnknown, format!("manifest {reference} is not in {name}"))
        })?;
        let digest = Digest::parse(&row.digest).map_err(|e| RegistryError::Internal(e.to_string()))?;
        if with_bytes && puller == Puller::Client {
            // A pull the project's "prevent vulnerable images" refuses (its facts are cached).
            if let Some(facts) = self.content.project_facts(name).await?
                && let Some(threshold) = &facts.prevent_vul
            {
                crate::vulnerable::check_pull(&self.db, threshold, facts.cve_allowlist.as_deref(), &row).await?;
            }
        }
        let bytes = if with_bytes { Some(self.manifest_bytes(&digest, row.size as u64).await?) } else { None };
        if with_bytes {
            self.pulls.record(repo, row.id, || match reference {
                Reference::Tag(t) => format!("{name}:{t}"),
                Reference::Digest(d) => format!("{name}@{d}"),
            });
        }
        Ok(ManifestRead { digest, media_type: row.media_type, size: row.size as u64, bytes })
    }

    /// A manifest's bytes, from memory when they were read recently.
    async fn manifest_bytes(&self, digest: &Digest, size: u64) -> Result<Bytes, RegistryError> {
        if let Some(bytes) = self.caches.manifest_bytes(digest.as_str()) {
            return Ok(bytes);
        }
        let bytes = self.read_small_blob(digest, size).await?;
        self.caches.put_manifest_bytes(digest.as_str(), &bytes);
        Ok(bytes)
    }

    pub(crate) async fn read_small_blob(&self, digest: &Digest, size: u64) -> Result<Bytes, RegistryError> {
        let buf = self.fold_blob(digest, Vec::with_capacity(size as usize), |buf, chunk| buf.extend_from_slice(chunk));
        let bytes = buf.await?;
        if bytes.len() as u64 != size {
            return Err(RegistryError::Internal(format!("manifest {digest} has an unexpected size")));
        }
        Ok(Bytes::from(bytes))
    }

    /// Passes the stored blob's bytes to `f` in order (see [`fold_blob`]).
    async fn fold_blob<T: Send + 'static>(
        &self,
        digest: &Digest,
        acc: T,
        f: fn(&mut T, &[u8]),
    ) -> Result<T, RegistryError> {
        fold_blob(self.store.as_ref(), digest, acc, f).await
    }

    // ---- listings

    fn page_limit(n: Option<i64>) -> i64 {
        n.unwrap_or(MAX_PAGE).clamp(0, MAX_PAGE)
    }

    pub async fn tags(&self, name: &RepositoryName, n: Option<i64>, last: Option<&str>) -> Result<Page, RegistryError> {
        let repo = self.repository(name).await?;
        let limit = Self::page_limit(n);
        let mut items = self.db.tags(repo, limit + 1, last).await?;
        let more = items.len() as i64 > limit;
        items.truncate(limit as usize);
        Ok(Page { items, more })
    }

    /// Repositories, one page; `visible_to` as in [`Db::catalog`] (`None`: all of them).
    pub async fn catalog(
        &self,
        n: Option<i64>,
        last: Option<&str>,
        visible_to: Option<i64>,
    ) -> Result<Page, RegistryError> {
        let limit = Self::page_limit(n);
        let mut items = self.db.catalog(limit + 1, last, visible_to).await?;
        let more = items.len() as i64 > limit;
        items.truncate(limit as usize);
        Ok(Page { items, more })
    }

    /// Descriptors of the manifests that name `subject` as their subject.
    pub async fn referrers(
        &self,
        name: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        let Some(repo) = self.db.repository_id(name.as_str()).await? else {
            return Ok(Vec::new());
        };
        let rows = self.db.referrers(repo, subject.as_str(), artifact_type).await?;
        rows.into_iter()
            .map(|r| {
                let annotations = match r.annotations {
                    Some(a) => Some(serde_json::from_str(&a).map_err(|e| RegistryError::Internal(e.to_string()))?),
                    None => None,
                };
                Ok(Descriptor {
                    media_type: r.media_type,
                    digest: r.digest,
                    size: r.size,
                    artifact_type: r.artifact_type,
                    annotations,
                    urls: None,
                    platform: None,
                })
            })
            .collect()
    }
}

/// A body of at most `limit` bytes, in one buffer; a longer one is refused as it arrives.
async fn receive_whole(mut body: ByteStream, limit: u64) -> Result<Bytes, RegistryError> {
    use futures_util::StreamExt;
    let mut buf = bytes::BytesMut::with_capacity(limit as usize);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| RegistryError::client(ErrorCode::BlobUploadInvalid, e))?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(RegistryError::client(
                ErrorCode::SizeInvalid,
                format!("the body is longer than the {limit} bytes announced"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Passes a stored blob's bytes to `f` in order, a chunk at a time (a local file is read
/// on a blocking thread: a disk read, never a wait on the network).
pub(crate) async fn fold_blob<T: Send + 'static>(
    store: &dyn BlobStore,
    digest: &Digest,
    mut acc: T,
    f: fn(&mut T, &[u8]),
) -> Result<T, RegistryError> {
    match store.get(digest, None).await? {
        BlobBody::File { file, start, len } => tokio::task::spawn_blocking(move || {
            use std::io::{Read, Seek, SeekFrom};
            let mut file = file;
            file.seek(SeekFrom::Start(start))?;
            let mut reader = file.take(len);
            let mut buf = vec![0u8; len.clamp(1, 1 << 20) as usize];
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    return Ok::<_, std::io::Error>(acc);
                }
                f(&mut acc, &buf[..n]);
            }
        })
        .await
        .map_err(|e| RegistryError::Internal(e.to_string()))?
        .map_err(|e| RegistryError::Internal(e.to_string())),
        BlobBody::Stream { mut stream, .. } => {
            use futures_util::StreamExt;
            while let Some(chunk) = stream.next().await {
                f(&mut acc, &chunk.map_err(RegistryError::Internal)?);
            }
            Ok(acc)
        }
    }
}
