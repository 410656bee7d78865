//! The local filesystem driver (also right for a shared volume mounted by several replicas).
//!
//! Layout under the root:
//! - `blobs/<algorithm>/<first two hex>/<hex>`: published blobs, never modified in place;
//! - `uploads/<id>`: the bytes of an upload session, appended to and fsynced per chunk;
//! - `tmp/`: whole-blob writes before their rename.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use berth_oci::range::ByteRange;
use berth_oci::{Algorithm, Digest, Hasher};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::{Appended, BlobBody, BlobPrefix, BlobStore, BlobWalk, ByteStream, StoreError, StoredBlob, UploadState};

/// The buffer a blob is read back through to hash it again.
const WRITE_BUFFER: usize = 512 << 10;
/// Bytes received before they are handed to blocking threads to hash and write; one batch is
/// received while the one before is hashed and written, so an upload holds about two batches (and one
/// chunk: hyper's are up to a few hundred KiB) in memory. Bounded in bytes, not chunks: with
/// many uploads on few cores the writers fall behind, and a count of chunks once let each
/// upload hold megabytes (64 concurrent pushes peaked at 648 MiB).
const BATCH_BYTES: usize = 512 << 10;

pub struct FsStore {
    root: PathBuf,
}

impl FsStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<FsStore> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        owner_only(&root)?;
        for dir in ["blobs", "uploads", "tmp"] {
            std::fs::create_dir_all(root.join(dir))?;
            owner_only(&root.join(dir))?;
        }
        remove_stale(&root.join("tmp"))?;
        Ok(FsStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root.join("blobs").join(digest.algorithm().as_str()).join(&hex[..2]).join(hex)
    }

    fn upload_path(&self, id: &str) -> Result<PathBuf, StoreError> {
        crate::check_upload_id(id)?;
        Ok(self.root.join("uploads").join(id))
    }

    /// Moves a complete, synced file into place as `digest`, durably.
    fn publish(&self, from: &Path, digest: &Digest) -> io::Result<()> {
        let to = self.blob_path(digest);
        let dir = to.parent().ok_or_else(|| io::Error::other("blob path has no parent"))?;
        if !dir.is_dir() {
            std::fs::create_dir_all(dir)?;
            // The new directory's own entry must survive too.
            if let Some(parent) = dir.parent() {
                std::fs::File::open(parent)?.sync_all()?;
            }
        }
        // A blob stored already (pushed again, to another repository) is replaced; freeing
        // the old file's blocks happens when its last handle closes, which for a large one
        // took 70 ms per 256 MiB inside the rename. Held open, it is freed off this path.
        let replaced = std::fs::File::open(&to).ok();
        std::fs::rename(from, &to)?;
        if let Some(replaced) = replaced {
            // (Without a thread, the closure and the file with it are dropped here.)
            let _ = std::thread::Builder::new().name("berth-free".into()).spawn(move || drop(replaced));
        }
        std::fs::File::open(dir)?.sync_all()
    }
}

/// Private images and upload bytes are for Berth alone: the root and its directories are the
/// owner's only (0700), whatever the umask they were made under, so that no other local user
/// can read a blob whatever mode its file has.
fn owner_only(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        tracing::warn!(dir = %dir.display(), mode = format!("{:o}", mode & 0o777), "made a storage directory owner-only (0700)");
    }
    Ok(())
}

/// Whole-blob writes that a stopped process left behind. Only old ones: another replica sharing
/// the volume may be writing a new one now.
fn remove_stale(tmp: &Path) -> io::Result<()> {
    const STALE: std::time::Duration = std::time::Duration::from_secs(3600);
    for entry in std::fs::read_dir(tmp)? {
        let entry = entry?;
        let age = entry.metadata()?.modified()?.elapsed().unwrap_or_default();
        if age > STALE {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Appends one batch of received chunks (on a blocking thread): as they are, with `writev` (no
/// copy into a buffer of ours first), and asks the kernel to start writing them to disk now, so
/// that the `fdatasync` that ends the upload finds little left to do (on a 256 MiB push it had
/// taken a quarter of the time).
fn write_batch(mut file: std::fs::File, mut written: u64, chunks: &[Bytes]) -> io::Result<(std::fs::File, u64)> {
    // Empty chunks are left out: a write of nothing answers 0, which would read as a full disk.
    let mut slices: Vec<io::IoSlice<'_>> =
        chunks.iter().filter(|c| !c.is_empty()).map(|c| io::IoSlice::new(c)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = match file.write_vectored(rest) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "the upload file took no bytes")),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        written += n as u64;
        io::IoSlice::advance_slices(&mut rest, n);
    }
    start_writeback(&file);
    Ok((file, written))
}

/// Starts writing `file`'s dirty pages to disk without waiting for them (Linux's
/// `sync_file_range`); durability still comes from the `fdatasync` after the last batch. A
/// failure only loses the head start.
fn start_writeback(file: &std::fs::File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is open for as long as `file` is borrowed; offset 0 and
        // length 0 name the whole file; the call reads no memory of ours.
        let _ = unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StoreError::Io(io::Error::other(e)))?
}

/// Removes a file; one already gone is no error (deleting a blob twice is allowed).
fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[async_trait]
impl BlobStore for FsStore {
    fn provider_name(&self) -> &'static str {
        "filesystem"
    }

    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        match tokio::fs::metadata(self.blob_path(digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn get(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobBody, StoreError> {
        let path = self.blob_path(digest);
        let digest = digest.clone();
        blocking(move || {
            let file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(StoreError::NotFound(digest));
                }
                Err(e) => return Err(e.into()),
            };
            let size = file.metadata()?.len();
            let (start, len) = match range {
                Some(r) if r.end < size => (r.start, r.len()),
                Some(_) => return Err(StoreError::Io(io::Error::other("range past end of blob"))),
                None => (0, size),
            };
            Ok(BlobBody::File { file, start, len })
        })
        .await
    }

    async fn put(&self, digest: &Digest, bytes: Bytes) -> Result<(), StoreError> {
        let store = FsStore { root: self.root.clone() };
        let digest = digest.clone();
        // Hashing a few MiB is too long for the runtime's threads: all of it on a blocking one.
        blocking(move || {
            let actual = Digest::of(digest.algorithm(), &bytes);
            if actual != digest {
                return Err(StoreError::DigestMismatch { expected: digest, actual });
            }
            // A file already under this name is kept only if it holds these very bytes: one
            // planted there (or left torn by a filesystem that lost a write) is replaced.
            match std::fs::read(store.blob_path(&digest)) {
                Ok(existing) if existing == bytes => return Ok(()),
                Ok(_) => tracing::warn!(%digest, "replacing a blob file whose content is not its digest's"),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            let tmp = store.root.join("tmp").join(uuid::Uuid::new_v4().to_string());
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            drop(f);
            store.publish(&tmp, &digest).inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })?;
            Ok(())
        })
        .await
    }

    async fn delete(&self, digest: &Digest) -> Result<(), StoreError> {
        let path = self.blob_path(digest);
        blocking(move || Ok(remove_if_present(&path)?)).await
    }

    async fn delete_many(&self, digests: &[Digest], concurrency: usize) -> Result<(), StoreError> {
        // A share of the list per blocking thread: a task per file would cost more than the
        // unlink itself.
        let paths: Vec<PathBuf> = digests.iter().map(|d| self.blob_path(d)).collect();
        let share = paths.len().div_ceil(concurrency.max(1)).max(1);
        let tasks: Vec<_> = paths
            .chunks(share)
            .map(|chunk| {
                let chunk = chunk.to_vec();
                blocking(move || {
                    for path in chunk {
                        remove_if_present(&path)?;
                    }
                    Ok(())
                })
            })
            .collect();
        futures_util::future::try_join_all(tasks).await?;
        Ok(())
    }

    fn walk_blobs(&self, prefix: &BlobPrefix) -> BlobWalk {
        // A blocking thread reads the directories and hands entries over a small channel, so
        // that the walk holds one shard's names at most and waits when the consumer does.
        let dir = self.root.join("blobs").join(prefix.algorithm().as_str());
        let prefix = prefix.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<StoredBlob, StoreError>>(256);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = walk_dir(&dir, &prefix, &tx) {
                let _ = tx.blocking_send(Err(e.into()));
            }
        });
        Box::pin(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }))
    }

    async fn upload_start(&self, id: &str) -> Result<UploadState, StoreError> {
        let path = self.upload_path(id)?;
        blocking(move || {
            std::fs::File::create_new(&path)?.sync_all()?;
            // The file itself is the state: nothing to remember beside the offset.
            Ok(UploadState::new())
        })
        .await
    }

    async fn upload_append(
        &self,
        id: &str,
        offset: u64,
        _state: &[u8],
        hasher: &mut Hasher,
        mut body: ByteStream,
    ) -> Result<Appended, StoreError> {
        let path = self.upload_path(id)?;
        let owned_id = id.to_string();
        let file = blocking(move || {
            let mut file = match std::fs::OpenOptions::new().write(true).open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(StoreError::UploadNotFound(owned_id));
                }
                Err(e) => return Err(e.into()),
            };
            let len = file.metadata()?.len();
            if len < offset {
                return Err(StoreError::Io(io::Error::other(format!(
                    "upload file has {len} bytes, fewer than the recorded offset {offset}"
                ))));
            }
            if len > offset {
                // Bytes of a chunk that was never acknowledged.
                file.set_len(offset)?;
            }
            file.seek(SeekFrom::Start(offset))?;
            Ok(file)
        })
        .await?;

        // Receiving, hashing and writing overlap: this task reads the socket into a batch
        // while one blocking thread hashes the batch before it and another writes that batch
        // (hashing and writing on one thread left a core idle a third of the time). A blocking
        // thread is taken only for a batch that is all there: a client that stalls holds none
        // (it once held one for the whole body, and 512 stalled uploads took the whole pool).
        let join = |e: tokio::task::JoinError| StoreError::Io(io::Error::other(e));
        let mut writer = Some((file, 0u64));
        let mut digester = Some(hasher.clone());
        let mut writing: Option<tokio::task::JoinHandle<io::Result<(std::fs::File, u64)>>> = None;
        let mut hashing: Option<tokio::task::JoinHandle<Hasher>> = None;
        let mut batch: Vec<Bytes> = Vec::new();
        let mut batched = 0usize;
        let mut body_error = None;
        let mut ended = false;
        while !ended {
            match body.next().await {
                Some(Ok(chunk)) => {
                    batched += chunk.len();
                    batch.push(chunk);
                }
                Some(Err(e)) => {
                    body_error = Some(e);
                    break;
                }
                None => ended = true,
            }
            if batched < BATCH_BYTES && !ended {
                continue;
            }
            // The batch before this one must be written and hashed first.
            if let Some(handle) = writing.take() {
                writer = Some(handle.await.map_err(join)??);
            }
            if let Some(handle) = hashing.take() {
                digester = Some(handle.await.map_err(join)?);
            }
            let (Some((file, written)), Some(mut worker_hasher)) = (writer.take(), digester.take()) else { break };
            let chunks = std::sync::Arc::new(std::mem::take(&mut batch));
            batched = 0;
            let to_hash = chunks.clone();
            hashing = Some(tokio::task::spawn_blocking(move || {
                for chunk in to_hash.iter() {
                    worker_hasher.update(chunk);
                }
                worker_hasher
            }));
            writing = Some(tokio::task::spawn_blocking(move || write_batch(file, written, &chunks)));
        }
        if let Some(handle) = writing.take() {
            writer = Some(handle.await.map_err(join)??);
        }
        if let Some(handle) = hashing.take() {
            digester = Some(handle.await.map_err(join)?);
        }
        if let Some(e) = body_error {
            return Err(StoreError::Body(e));
        }
        let (Some((file, written)), Some(new_hasher)) = (writer, digester) else {
            return Err(StoreError::Io(io::Error::other("the upload's writer was lost")));
        };
        blocking(move || Ok(file.sync_data()?)).await?;
        *hasher = new_hasher;
        Ok(Appended { offset: offset + written, state: UploadState::new() })
    }

    async fn upload_commit(&self, id: &str, size: u64, _state: &[u8], digest: &Digest) -> Result<(), StoreError> {
        let path = self.upload_path(id)?;
        let store = FsStore { root: self.root.clone() };
        let (owned_id, digest) = (id.to_string(), digest.clone());
        blocking(move || {
            let file = match std::fs::OpenOptions::new().write(true).open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(StoreError::UploadNotFound(owned_id));
                }
                Err(e) => return Err(e.into()),
            };
            if file.metadata()?.len() != size {
                file.set_len(size)?;
                file.sync_all()?;
            }
            drop(file);
            store.publish(&path, &digest)?;
            Ok(())
        })
        .await
    }

    async fn upload_rehash(
        &self,
        id: &str,
        size: u64,
        _state: &[u8],
        algorithm: Algorithm,
    ) -> Result<Digest, StoreError> {
        let path = self.upload_path(id)?;
        let owned_id = id.to_string();
        blocking(move || {
            let file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(StoreError::UploadNotFound(owned_id));
                }
                Err(e) => return Err(e.into()),
            };
            let mut reader = io::BufReader::with_capacity(WRITE_BUFFER, file).take(size);
            let mut hasher = Hasher::new(algorithm);
            let mut buf = vec![0u8; WRITE_BUFFER];
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            Ok(hasher.finish())
        })
        .await
    }

    async fn capacity(&self) -> Result<Option<(u64, u64)>, StoreError> {
        let root = self.root.clone();
        blocking(move || {
            use std::os::unix::ffi::OsStrExt;
            let path = std::ffi::CString::new(root.as_os_str().as_bytes()).map_err(io::Error::other)?;
            let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
            // SAFETY: `path` is a valid NUL-terminated string and `st` points to writable
            // memory of the right size; statvfs fills it or fails.
            let rc = unsafe { libc::statvfs(path.as_ptr(), st.as_mut_ptr()) };
            if rc != 0 {
                return Err(io::Error::last_os_error().into());
            }
            // SAFETY: statvfs returned 0, so it initialised `st`.
            let st = unsafe { st.assume_init() };
            // The field types differ between platforms (u32 on some); the casts are for those.
            #[allow(clippy::unnecessary_cast)]
            let block = st.f_frsize as u64;
            #[allow(clippy::unnecessary_cast)]
            Ok(Some((st.f_blocks as u64 * block, st.f_bavail as u64 * block)))
        })
        .await
    }

    async fn upload_abort(&self, id: &str, _state: &[u8]) -> Result<(), StoreError> {
        let path = self.upload_path(id)?;
        match tokio::fs::remove_file(path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Sends every blob under `dir` (`blobs/<algorithm>`) that `prefix` covers; stops early when the
/// walk's consumer has gone.
fn walk_dir(
    dir: &Path,
    prefix: &BlobPrefix,
    tx: &tokio::sync::mpsc::Sender<Result<StoredBlob, StoreError>>,
) -> io::Result<()> {
    let shards: Vec<String> = match prefix.shard() {
        Some(shard) => vec![shard.to_string()],
        None => match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut names = Vec::new();
                for entry in entries {
                    names.push(entry?.file_name().to_string_lossy().into_owned());
                }
                names
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        },
    };
    for shard in shards {
        let entries = match std::fs::read_dir(dir.join(&shard)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(digest) = prefix.covers(&shard, &name.to_string_lossy()) else { continue };
            // A blob deleted since the directory was read is simply not there.
            let meta = match entry.metadata() {
                Ok(meta) if meta.is_file() => meta,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let blob = StoredBlob { digest, size: meta.len(), modified: meta.modified()? };
            if tx.blocking_send(Ok(blob)).is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: Vec<&'static [u8]>) -> ByteStream {
        Box::pin(futures_util::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p)))))
    }

    fn read_all(b: BlobBody) -> Vec<u8> {
        match b {
            BlobBody::File { mut file, start, len } => {
                file.seek(SeekFrom::Start(start)).unwrap();
                let mut v = vec![0; len as usize];
                file.read_exact(&mut v).unwrap();
                v
            }
            BlobBody::Stream { .. } => panic!("fs store returns files"),
        }
    }

    /// The same blob uploaded twice (pushed to a second repository): the second replaces the
    /// first file (whose blocks are freed off the request's path) and reads back whole; a large
    /// body crosses several batches, each hashed and written on threads of their own.
    #[tokio::test]
    async fn an_upload_of_a_stored_blob_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..(BATCH_BYTES * 5 + 777)).map(|i| (i % 251) as u8).collect();
        let digest = Digest::of(Algorithm::Sha256, &data);
        for id in ["first", "second"] {
            store.upload_start(id).await.unwrap();
            let mut h = Hasher::new(Algorithm::Sha256);
            // Empty chunks among them, as a body may carry.
            let parts: Vec<Result<Bytes, String>> =
                data.chunks(100_000).flat_map(|c| [Ok(Bytes::copy_from_slice(c)), Ok(Bytes::new())]).collect();
            let off = store
                .upload_append(id, 0, &[], &mut h, Box::pin(futures_util::stream::iter(parts)))
                .await
                .unwrap()
                .offset;
            assert_eq!(off, data.len() as u64);
            assert_eq!(h.finish(), digest, "every batch hashed, in order");
            store.upload_commit(id, off, &[], &digest).await.unwrap();
            assert_eq!(read_all(store.get(&digest, None).await.unwrap()), data);
        }
        let shard = store.blob_path(&digest).parent().unwrap().to_path_buf();
        assert_eq!(std::fs::read_dir(shard).unwrap().count(), 1, "one file under the digest");
    }

    #[tokio::test]
    async fn upload_resumes_from_saved_state_and_publishes() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        store.upload_start("u1").await.unwrap();
        let mut h = Hasher::new(Algorithm::Sha256);
        let off = store.upload_append("u1", 0, &[], &mut h, body(vec![b"hello ", b"wor"])).await.unwrap().offset;
        assert_eq!(off, 9);
        let saved = h.save();

        // A "new process": a fresh store handle and a hasher restored from saved bytes.
        let store = FsStore::open(dir.path()).unwrap();
        let mut h = Hasher::restore(Algorithm::Sha256, &saved).unwrap();
        let off = store.upload_append("u1", off, &[], &mut h, body(vec![b"ld"])).await.unwrap().offset;
        assert_eq!(off, 11);
        let digest = h.finish();
        assert_eq!(digest, Digest::sha256_of(b"hello world"));
        store.upload_commit("u1", off, &[], &digest).await.unwrap();
        assert_eq!(store.stat(&digest).await.unwrap(), Some(11));
        let bytes = read_all(store.get(&digest, None).await.unwrap());
        assert_eq!(bytes, b"hello world");
        let part = read_all(store.get(&digest, Some(ByteRange { start: 6, end: 10 })).await.unwrap());
        assert_eq!(part, b"world");
        assert!(matches!(
            store.upload_append("u1", 0, &[], &mut Hasher::new(Algorithm::Sha256), body(vec![])).await,
            Err(StoreError::UploadNotFound(_))
        ));
    }

    #[tokio::test]
    async fn unacknowledged_bytes_are_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        store.upload_start("u2").await.unwrap();
        let mut h = Hasher::new(Algorithm::Sha256);
        let off = store.upload_append("u2", 0, &[], &mut h, body(vec![b"abc"])).await.unwrap().offset;
        // Simulate a crash after a write that was never recorded.
        let mut f = std::fs::OpenOptions::new().append(true).open(dir.path().join("uploads/u2")).unwrap();
        f.write_all(b"GARBAGE").unwrap();
        let off = store.upload_append("u2", off, &[], &mut h, body(vec![b"def"])).await.unwrap().offset;
        let digest = h.finish();
        assert_eq!(digest, Digest::sha256_of(b"abcdef"));
        store.upload_commit("u2", off, &[], &digest).await.unwrap();
        assert_eq!(read_all(store.get(&digest, None).await.unwrap()), b"abcdef");
    }

    #[tokio::test]
    async fn body_error_leaves_offset_and_hasher_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        store.upload_start("u3").await.unwrap();
        let mut h = Hasher::new(Algorithm::Sha256);
        let broken: ByteStream = Box::pin(futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"xyz")),
            Err("connection reset".to_string()),
        ]));
        assert!(matches!(store.upload_append("u3", 0, &[], &mut h, broken).await, Err(StoreError::Body(_))));
        assert_eq!(h.clone().finish(), Digest::sha256_of(b""));
    }

    #[tokio::test]
    async fn capacity_of_the_volume() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        let (total, free) = store.capacity().await.unwrap().unwrap();
        assert!(total > 0 && free <= total);
    }

    #[tokio::test]
    async fn put_verifies_and_paths_are_confined() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        let d = Digest::sha256_of(b"m");
        assert!(matches!(store.put(&d, Bytes::from_static(b"not m")).await, Err(StoreError::DigestMismatch { .. })));
        assert_eq!(store.stat(&d).await.unwrap(), None);
        store.put(&d, Bytes::from_static(b"m")).await.unwrap();
        assert_eq!(store.stat(&d).await.unwrap(), Some(1));
        store.delete(&d).await.unwrap();
        store.delete(&d).await.unwrap();
        assert!(store.upload_start("../escape").await.is_err());
        assert!(store.upload_start("a/b").await.is_err());
    }

    /// A file planted under a digest before its content was pushed is not trusted.
    #[tokio::test]
    async fn put_replaces_a_planted_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        let bytes = Bytes::from_static(b"{\"the\":\"real manifest\"}");
        let digest = Digest::sha256_of(&bytes);
        let path = store.blob_path(&digest);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"planted").unwrap();
        store.put(&digest, bytes.clone()).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        // And a second put of the same bytes keeps the file.
        store.put(&digest, bytes.clone()).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
}
