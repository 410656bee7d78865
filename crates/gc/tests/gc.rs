//! Garbage collection on SQLite or PostgreSQL (`BERTH_TEST_DATABASE=postgres`) and on the
//! filesystem or S3 (`BERTH_TEST_STORAGE=s3`): what nothing references goes, what something
//! references stays, the time window and dry run hold, untagged artifacts go when asked, pushes
//! racing a collection in a loop never end with an acknowledged manifest that does not pull
//! whole, and a collection cut off mid-way is taken over and finishes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_core::Registry;
use berth_core::identity::Identities;
use berth_db::Db;
use berth_db::jobs::{JobRow, status};
use berth_gc::{GarbageCollector, GcReport, JOB_KIND, SHARDS, report_of};
use berth_jobs::{JobService, JobSettings};
use berth_oci::range::ByteRange;
use berth_oci::{Algorithm, Hasher};
use berth_oci::{Digest, Reference, RepositoryName, Tag};
use berth_store::{
    Appended, BlobBody, BlobPrefix, BlobStore, BlobWalk, ByteStream, CloudStore, FsStore, S3Options, StoreError,
    UploadState,
};
use bytes::Bytes;

/// A store whose writes take a while to be answered after the bytes are down (a slow
/// backend), which widens the gap between a push's write and its record: the gap a
/// collection must not fall into. (The lag cannot be made to happen on demand otherwise.)
struct SlowWrites(Arc<dyn BlobStore>);

const WRITE_LAG: Duration = Duration::from_millis(15);

#[async_trait]
impl BlobStore for SlowWrites {
    fn provider_name(&self) -> &'static str {
        self.0.provider_name()
    }
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        self.0.stat(digest).await
    }
    async fn get(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobBody, StoreError> {
        self.0.get(digest, range).await
    }
    async fn put(&self, digest: &Digest, bytes: Bytes) -> Result<(), StoreError> {
        self.0.put(digest, bytes).await?;
        tokio::time::sleep(WRITE_LAG).await;
        Ok(())
    }
    async fn delete(&self, digest: &Digest) -> Result<(), StoreError> {
        self.0.delete(digest).await
    }
    fn walk_blobs(&self, prefix: &BlobPrefix) -> BlobWalk {
        self.0.walk_blobs(prefix)
    }
    async fn upload_start(&self, id: &str) -> Result<UploadState, StoreError> {
        self.0.upload_start(id).await
    }
    async fn upload_append(
        &self,
        id: &str,
        offset: u64,
        state: &[u8],
        hasher: &mut Hasher,
        body: ByteStream,
    ) -> Result<Appended, StoreError> {
        self.0.upload_append(id, offset, state, hasher, body).await
    }
    async fn upload_commit(&self, id: &str, size: u64, state: &[u8], digest: &Digest) -> Result<(), StoreError> {
        self.0.upload_commit(id, size, state, digest).await?;
        tokio::time::sleep(WRITE_LAG).await;
        Ok(())
    }
    async fn upload_rehash(&self, id: &str, size: u64, state: &[u8], a: Algorithm) -> Result<Digest, StoreError> {
        self.0.upload_rehash(id, size, state, a).await
    }
    async fn upload_abort(&self, id: &str, state: &[u8]) -> Result<(), StoreError> {
        self.0.upload_abort(id, state).await
    }
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &[u8] = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;

struct Env {
    registry: Arc<Registry>,
    _dir: tempfile::TempDir,
}

async fn open_db(dir: &std::path::Path) -> Db {
    if std::env::var("BERTH_TEST_DATABASE").as_deref() != Ok("postgres") {
        return Db::open_sqlite(&dir.join("berth.db")).await.unwrap();
    }
    let admin =
        std::env::var("BERTH_TEST_POSTGRES_URL").expect("BERTH_TEST_DATABASE=postgres needs BERTH_TEST_POSTGRES_URL");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let url = berth_db::create_postgres_database(&admin, &format!("berth_test_{}_{nanos}", std::process::id()))
        .await
        .unwrap();
    Db::connect(&url, 16).await.unwrap()
}

fn open_store(dir: &std::path::Path) -> Arc<dyn BlobStore> {
    if std::env::var("BERTH_TEST_STORAGE").as_deref() != Ok("s3") {
        return Arc::new(FsStore::open(dir.join("blobs")).unwrap());
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let endpoint = std::env::var("BERTH_TEST_S3_URL").expect("BERTH_TEST_STORAGE=s3 needs BERTH_TEST_S3_URL");
    Arc::new(
        CloudStore::s3(&S3Options {
            bucket: "berth-test".into(),
            region: Some("us-east-1".into()),
            endpoint: Some(endpoint),
            path_style: true,
            access_key: Some("berth-test".into()),
            secret_key: Some("berth-test-secret".into()),
            session_token: None,
            proxy: Default::default(),
            ca_pem: None,
            root: format!("gc-{}-{nanos}", std::process::id()),
        })
        .unwrap(),
    )
}

async fn open() -> Env {
    open_with(|store| store).await
}

async fn open_with(wrap: impl FnOnce(Arc<dyn BlobStore>) -> Arc<dyn BlobStore>) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    Identities::new(db.clone()).bootstrap(Some("Harbor12345")).await.unwrap();
    let admin = db.user_by_name("admin").await.unwrap().unwrap();
    db.create_project("p", admin.id, &[("public", "true")]).await.unwrap();
    db.create_project("q", admin.id, &[("public", "true")]).await.unwrap();
    Env { registry: Arc::new(Registry::new(db, wrap(open_store(dir.path())))), _dir: dir }
}

fn name(repo: &str) -> RepositoryName {
    RepositoryName::parse(repo).unwrap()
}

fn body(bytes: Vec<u8>) -> ByteStream {
    Box::pin(futures_util::stream::iter([Ok::<_, String>(Bytes::from(bytes))]))
}

impl Env {
    fn db(&self) -> &Db {
        self.registry.db()
    }

    async fn push_blob(&self, repo: &str, bytes: &[u8]) -> Result<Digest, berth_core::RegistryError> {
        let digest = Digest::sha256_of(bytes);
        self.registry
            .blob_upload_whole(&name(repo), &digest, Some(bytes.len() as u64), Some(body(bytes.to_vec())))
            .await?;
        Ok(digest)
    }

    fn manifest_of(config: &Digest, layers: &[(Digest, usize)]) -> Vec<u8> {
        let layers: Vec<serde_json::Value> = layers
            .iter()
            .map(|(d, size)| {
                serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.to_string(), "size": size})
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": CONFIG.len()},
            "layers": layers,
        }))
        .unwrap()
    }

    /// Pushes config, layers and manifest under `tag`; the manifest's digest and layers.
    async fn push_image(
        &self,
        repo: &str,
        tag: &str,
        layers: &[&[u8]],
    ) -> Result<(Digest, Vec<Digest>), berth_core::RegistryError> {
        let config = self.push_blob(repo, CONFIG).await?;
        let mut descs = Vec::new();
        for layer in layers {
            descs.push((self.push_blob(repo, layer).await?, layer.len()));
        }
        let bytes = Env::manifest_of(&config, &descs);
        let reference = Reference::Tag(Tag::parse(tag).unwrap());
        let (digest, _) = self
            .registry
            .content()
            .put_manifest(&name(repo), &reference, Some(OCI_MANIFEST), bytes.into(), &[])
            .await?;
        let mut blobs: Vec<Digest> = descs.into_iter().map(|(d, _)| d).collect();
        blobs.push(config);
        Ok((digest, blobs))
    }

    async fn delete_artifact(&self, repo: &str, digest: &Digest) {
        self.registry.content().delete_manifest(&name(repo), &Reference::Digest(digest.clone())).await.unwrap();
    }

    /// Whether the manifest pulls whole: its row, its bytes, and every blob it names, in the
    /// repository and in storage with its size.
    async fn pulls_whole(&self, repo: &str, manifest: &Digest, blobs: &[Digest]) -> Result<(), String> {
        let read = self
            .registry
            .manifest_read(&name(repo), &Reference::Digest(manifest.clone()), false)
            .await
            .map_err(|e| format!("manifest {manifest}: {e}"))?;
        let stored = self.registry.store().stat(manifest).await.map_err(|e| e.to_string())?;
        if stored != Some(read.size) {
            return Err(format!("manifest {manifest}'s bytes are gone from storage"));
        }
        for b in blobs {
            let size = self.registry.blob_size(&name(repo), b).await.map_err(|e| format!("blob {b}: {e}"))?;
            if self.registry.store().stat(b).await.map_err(|e| e.to_string())? != Some(size) {
                return Err(format!("blob {b} of {repo}@{manifest} is gone from storage"));
            }
        }
        Ok(())
    }

    async fn stored(&self, digest: &Digest) -> bool {
        self.registry.store().stat(digest).await.unwrap().is_some()
    }

    async fn usage(&self, project: &str) -> i64 {
        self.db().project_stats().await.unwrap().into_iter().find(|p| p.name == project).map_or(0, |p| p.bytes)
    }

    fn service(&self, settings: JobSettings) -> JobService {
        let mut jobs = JobService::new(self.db().clone(), settings);
        jobs.register(Arc::new(GarbageCollector::new(self.registry.clone(), 2)));
        jobs
    }

    /// A runner whose collections record their progress after every shard.
    fn checkpointing_service(&self, settings: JobSettings) -> JobService {
        let mut jobs = JobService::new(self.db().clone(), settings);
        let gc = GarbageCollector::new(self.registry.clone(), 2).with_checkpoint_every(Duration::ZERO);
        jobs.register(Arc::new(gc));
        jobs
    }

    /// Runs one collection with `parameters` to its end; its row and report.
    async fn gc(&self, parameters: serde_json::Value) -> (JobRow, GcReport) {
        let jobs = self.service(JobSettings::default());
        let id = jobs.enqueue(JOB_KIND, &parameters, 3).await.unwrap();
        while jobs.run_one().await.unwrap().is_some() {}
        let row = self.db().job(id).await.unwrap().unwrap();
        assert_eq!(row.status, status::SUCCESS, "{}", row.log);
        let report = report_of(&row.progress).unwrap();
        (row, report)
    }
}

fn zero_window() -> serde_json::Value {
    serde_json::json!({"time_window": 0, "delete_untagged": false})
}

#[tokio::test]
async fn what_nothing_references_goes_and_what_something_references_stays() {
    let env = open().await;
    let (kept, kept_blobs) = env.push_image("p/app", "v1", &[b"shared layer", b"layer of v1"]).await.unwrap();
    let (gone, _) = env.push_image("p/app", "v2", &[b"shared layer", b"layer of v2 only"]).await.unwrap();
    // The same content in another project's repository is that repository's, and stays.
    let (other, other_blobs) = env.push_image("q/app", "v1", &[b"layer of v2 only"]).await.unwrap();
    env.delete_artifact("p/app", &gone).await;
    // A layer pushed and never referenced, and bytes no row names (a crash between writing
    // and recording).
    let lonely = env.push_blob("p/app", b"pushed, never used").await.unwrap();
    let stray_bytes = b"written, never recorded".to_vec();
    let stray = Digest::sha256_of(&stray_bytes);
    env.registry.store().put(&stray, stray_bytes.clone().into()).await.unwrap();
    let v2_only = Digest::sha256_of(b"layer of v2 only");
    let usage_before = env.usage("p").await;

    let (row, report) = env.gc(zero_window()).await;

    assert!(!env.stored(&gone).await && !env.stored(&lonely).await && !env.stored(&stray).await, "{}", row.log);
    assert!(env.stored(&v2_only).await, "q/app still references the layer");
    env.pulls_whole("p/app", &kept, &kept_blobs).await.unwrap();
    env.pulls_whole("q/app", &other, &other_blobs).await.unwrap();
    assert_eq!(report.purged_manifests, 1, "{report:?}");
    // The lonely layer and the stray bytes; v2's own layer lives on in q.
    assert_eq!(report.purged_blobs, 2, "{report:?}");
    assert_eq!(report.freed_space, (gone_size(&env, &gone) + b"pushed, never used".len() + stray_bytes.len()) as u64);
    assert_eq!(report.purged_links, 2, "v2's layer and the lonely layer were linked to p/app: {report:?}");
    assert_eq!(report.shards_swept, SHARDS);
    let usage_after = env.usage("p").await;
    assert_eq!(
        usage_before - usage_after,
        (b"pushed, never used".len() + b"layer of v2 only".len()) as i64,
        "quota usage falls by what GC unlinked"
    );
    assert!(row.log.contains("deleted 2 blobs and 1 manifests"), "{}", row.log);
    // A second collection finds nothing more.
    let (_, again) = env.gc(zero_window()).await;
    assert_eq!((again.purged_blobs, again.purged_manifests, again.freed_space), (0, 0, 0), "{again:?}");
}

/// The size of a deleted manifest, from the bytes the test pushed (stored until collected).
fn gone_size(_env: &Env, _digest: &Digest) -> usize {
    // v2's manifest: the config and two layers, as `manifest_of` writes it.
    let config = Digest::sha256_of(CONFIG);
    Env::manifest_of(&config, &[(Digest::sha256_of(b"shared layer"), 12), (Digest::sha256_of(b"layer of v2 only"), 16)])
        .len()
}

#[tokio::test]
async fn the_time_window_keeps_young_content_and_a_dry_run_deletes_nothing() {
    let env = open().await;
    let (gone, _) = env.push_image("p/app", "v1", &[b"a layer"]).await.unwrap();
    env.delete_artifact("p/app", &gone).await;
    let lonely = env.push_blob("p/app", b"lonely").await.unwrap();

    let (_, young) = env.gc(serde_json::json!({"delete_untagged": false})).await;
    assert_eq!((young.purged_blobs, young.purged_manifests, young.purged_links), (0, 0, 0), "{young:?}");
    assert!(env.stored(&gone).await && env.stored(&lonely).await);

    let (dry_row, dry) = env.gc(serde_json::json!({"time_window": 0, "dry_run": true, "delete_untagged": false})).await;
    assert!(env.stored(&gone).await && env.stored(&lonely).await, "a dry run deleted: {}", dry_row.log);
    assert!(dry_row.log.contains("would delete"), "{}", dry_row.log);

    let (_, real) = env.gc(zero_window()).await;
    assert!(!env.stored(&gone).await && !env.stored(&lonely).await);
    // The dry run counted what the real one deleted.
    assert_eq!(
        (dry.purged_blobs, dry.purged_manifests),
        (real.purged_blobs, real.purged_manifests),
        "{dry:?} {real:?}"
    );
    // The layer, the config, the lonely blob; the manifest.
    assert_eq!((real.purged_blobs, real.purged_manifests), (3, 1), "{real:?}");
    assert_eq!(dry.freed_space, real.freed_space);
    assert_eq!(dry.purged_links, real.purged_links);
}

#[tokio::test]
async fn untagged_artifacts_go_only_when_asked() {
    let env = open().await;
    let (old, old_blobs) = env.push_image("p/app", "latest", &[b"old layer"]).await.unwrap();
    let (new, new_blobs) = env.push_image("p/app", "latest", &[b"new layer"]).await.unwrap();
    let (_, kept) = env.gc(zero_window()).await;
    assert_eq!(kept.purged_artifacts, 0);
    env.pulls_whole("p/app", &old, &old_blobs).await.unwrap();

    let (_, report) = env.gc(serde_json::json!({"time_window": 0})).await;
    assert_eq!(report.purged_artifacts, 1, "{report:?}");
    assert!(env.registry.manifest_read(&name("p/app"), &Reference::Digest(old.clone()), false).await.is_err());
    assert!(!env.stored(&old).await && !env.stored(&Digest::sha256_of(b"old layer")).await);
    env.pulls_whole("p/app", &new, &new_blobs).await.unwrap();
}

/// Pushes of images sharing layers, deletes and re-pushes of the same content, while
/// collections with a zero time window run back to back: every push that was acknowledged and
/// not deleted since pulls whole, during and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pushes_racing_collections_never_lose_an_acknowledged_manifest() {
    let env = Arc::new(open_with(|store| Arc::new(SlowWrites(store))).await);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector = {
        let (env, stop) = (env.clone(), stop.clone());
        tokio::spawn(async move {
            let mut runs = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                env.gc(zero_window()).await;
                runs += 1;
                // A breath between collections, or with a zero window every push's layers are
                // collected before its manifest arrives (refused, so safe, but nothing to check).
                tokio::time::sleep(Duration::from_millis(120)).await;
            }
            runs
        })
    };
    let mut pushers = Vec::new();
    for p in 0..4 {
        let env = env.clone();
        pushers.push(tokio::spawn(async move {
            // What each tag holds now, as acknowledged.
            let mut live: HashMap<String, (Digest, Vec<Digest>)> = HashMap::new();
            let (mut acknowledged, mut refused) = (0, 0);
            for round in 0..60 {
                let repo = format!("p/app{}", p % 2);
                let tag = format!("t{p}-{}", round % 3);
                let unique = format!("layer {p} {}", round % 5).into_bytes();
                let shared: &[u8] = if round % 2 == 0 { b"shared layer one" } else { b"shared layer two" };
                match env.push_image(&repo, &tag, &[shared, &unique]).await {
                    Ok(pushed) => {
                        acknowledged += 1;
                        live.insert(format!("{repo}:{tag}"), pushed);
                    }
                    // A blob collected between its upload and the manifest: refused, never
                    // acknowledged; the client pushes again.
                    Err(e) => {
                        if refused == 0 {
                            eprintln!("refused: {e}");
                        }
                        refused += 1
                    }
                }
                if round % 4 == 3 {
                    // Delete one, so that its content becomes garbage and is pushed again.
                    let key = format!("{repo}:{tag}");
                    if let Some((digest, _)) = live.remove(&key) {
                        let _ = env.registry.content().delete_manifest(&name(&repo), &Reference::Digest(digest)).await;
                    }
                }
                for (key, (digest, blobs)) in &live {
                    let (repo, _) = key.split_once(':').unwrap();
                    // Another pusher's delete of the same content in the same repository may
                    // have taken it; only a manifest still recorded must pull whole.
                    if env.registry.manifest_read(&name(repo), &Reference::Digest(digest.clone()), false).await.is_ok()
                    {
                        env.pulls_whole(repo, digest, blobs).await.unwrap_or_else(|e| panic!("during: {e}"));
                    }
                }
            }
            (live, acknowledged, refused)
        }));
    }
    let mut finals = Vec::new();
    let mut acknowledged = 0;
    for p in pushers {
        let (live, a, _) = p.await.unwrap();
        acknowledged += a;
        finals.push(live);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let runs = collector.await.unwrap();
    eprintln!("{acknowledged} pushes acknowledged, {runs} collections");
    assert!(acknowledged > 40, "{acknowledged} pushes acknowledged");
    assert!(runs >= 5, "only {runs} collections raced the pushes");
    // And after one more collection, with nothing racing it.
    env.gc(zero_window()).await;
    for live in finals {
        for (key, (digest, blobs)) in live {
            let (repo, _) = key.split_once(':').unwrap();
            if env.registry.manifest_read(&name(repo), &Reference::Digest(digest.clone()), false).await.is_ok() {
                env.pulls_whole(repo, &digest, &blobs).await.unwrap_or_else(|e| panic!("after: {e}"));
            }
        }
    }
}

/// A collection cut off mid-sweep (its runner gone, as when its replica is killed) is taken
/// over when its lease runs out, resumes from its last shard and finishes; nothing referenced
/// is lost, and the garbage is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_cut_off_is_taken_over_and_finishes() {
    let env = open().await;
    let (kept, kept_blobs) = env.push_image("p/app", "v1", &[b"kept layer"]).await.unwrap();
    let mut garbage = Vec::new();
    for i in 0..60 {
        garbage.push(env.push_blob("p/app", format!("garbage {i}").as_bytes()).await.unwrap());
    }
    let settings = JobSettings { lease: Duration::from_millis(600), ..JobSettings::default() };
    let first = env.checkpointing_service(settings.clone());
    let id = first.enqueue(JOB_KIND, &zero_window(), 3).await.unwrap();
    // Cut off once it has swept some shards.
    let cut = tokio::time::timeout(Duration::from_secs(60), async {
        let run = first.run_one();
        tokio::pin!(run);
        loop {
            tokio::select! {
                _ = &mut run => panic!("the collection finished before it was cut off"),
                _ = tokio::time::sleep(Duration::from_millis(5)) => {
                    let row = env.db().job(id).await.unwrap().unwrap();
                    if report_of(&row.progress).is_some_and(|r| r.shards_swept >= 20) {
                        return;
                    }
                }
            }
        }
    })
    .await;
    assert!(cut.is_ok(), "the collection never got 20 shards in");
    drop(first);
    let row = env.db().job(id).await.unwrap().unwrap();
    assert_eq!(row.status, status::RUNNING);
    let swept_before = report_of(&row.progress).unwrap().shards_swept;
    assert!(swept_before < SHARDS);

    let second = env.service(settings);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(second.run_one().await.unwrap(), Some(id), "the second runner takes the job over");
    let row = env.db().job(id).await.unwrap().unwrap();
    assert_eq!(row.status, status::SUCCESS, "{}", row.log);
    assert_eq!(row.attempts, 2);
    assert!(row.log.contains("(resumed)"), "{}", row.log);
    let report = report_of(&row.progress).unwrap();
    assert_eq!(report.shards_swept, SHARDS);
    for g in &garbage {
        assert!(!env.stored(g).await, "garbage {g} is still stored");
    }
    env.pulls_whole("p/app", &kept, &kept_blobs).await.unwrap();
    assert!(env.db().tombstones(10).await.unwrap().is_empty());
}
