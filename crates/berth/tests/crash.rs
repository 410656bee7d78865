//! Crash safety: SIGKILL the real binary at random moments during concurrent pushes, restart it,
//! and check that everything acknowledged is there and whole, and that no partial blob is
//! visible.
//!
//! `BERTH_CRASH_ROUNDS` (default 4) sets the number of kills; `BERTH_CRASH_SEED` replays a run
//! (the seed is printed).

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_oci::Digest;
use common::{Berth, admin_client};
use reqwest::StatusCode;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const WORKERS: usize = 6;

/// xorshift64*: a tiny deterministic generator, so that a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(len);
        v
    }
}

/// A manifest push the server acknowledged with 201.
struct AckedImage {
    repo: String,
    tag: String,
    manifest: Digest,
    layers: Vec<(Digest, Vec<u8>)>,
}

/// An upload session whose chunks up to `acked` were acknowledged with 202.
struct AckedUpload {
    repo: String,
    location: String,
    data: Vec<u8>,
    acked: usize,
}

#[derive(Default)]
struct Ledger {
    images: Vec<AckedImage>,
    uploads: Vec<AckedUpload>,
}

async fn push_blob(
    client: &reqwest::Client,
    base: &str,
    repo: &str,
    data: &[u8],
    chunked: bool,
    ledger: &Mutex<Ledger>,
) -> Result<Digest, String> {
    let digest = Digest::sha256_of(data);
    let err = |e: reqwest::Error| e.to_string();
    if !chunked {
        let resp = client
            .post(format!("{base}/v2/{repo}/blobs/uploads/?digest={digest}"))
            .body(data.to_vec())
            .send()
            .await
            .map_err(err)?;
        return if resp.status() == StatusCode::CREATED { Ok(digest) } else { Err(format!("{}", resp.status())) };
    }
    let resp = client.post(format!("{base}/v2/{repo}/blobs/uploads/")).send().await.map_err(err)?;
    let mut location = resp.headers().get("location").and_then(|v| v.to_str().ok()).ok_or("no location")?.to_string();
    let chunk = 256 * 1024;
    let mut offset = 0;
    while offset < data.len() {
        let end = (offset + chunk).min(data.len());
        let resp = client
            .patch(format!("{base}{location}"))
            .header("content-range", format!("{offset}-{}", end - 1))
            .body(data[offset..end].to_vec())
            .send()
            .await
            .map_err(err)?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(format!("patch: {}", resp.status()));
        }
        location = resp.headers().get("location").and_then(|v| v.to_str().ok()).ok_or("no location")?.to_string();
        offset = end;
        let mut l = ledger.lock().unwrap();
        match l.uploads.iter_mut().find(|u| u.location == location) {
            Some(u) => u.acked = offset,
            None => l.uploads.push(AckedUpload {
                repo: repo.to_string(),
                location: location.clone(),
                data: data.to_vec(),
                acked: offset,
            }),
        }
    }
    let resp = client.put(format!("{base}{location}?digest={digest}")).send().await.map_err(err)?;
    if resp.status() != StatusCode::CREATED {
        return Err(format!("put: {}", resp.status()));
    }
    ledger.lock().unwrap().uploads.retain(|u| u.location != location);
    Ok(digest)
}

async fn worker(base: String, id: usize, seed: u64, ledger: Arc<Mutex<Ledger>>) {
    let client = admin_client();
    let mut rng = Rng(seed ^ (id as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    for n in 0.. {
        let repo = format!("library/crash-w{id}");
        let mut layers = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let len = 1 + rng.below(3 << 20) as usize;
            let data = rng.bytes(len);
            let chunked = rng.below(2) == 0;
            match push_blob(&client, &base, &repo, &data, chunked, &ledger).await {
                Ok(d) => layers.push((d, data)),
                Err(_) => return,
            }
        }
        let config = format!("{{\"worker\":{id},\"n\":{n}}}").into_bytes();
        let Ok(config_digest) = push_blob(&client, &base, &repo, &config, false, &ledger).await else {
            return;
        };
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
            "layers": layers.iter().map(|(d, b)| serde_json::json!({"mediaType": "application/octet-stream", "digest": d.to_string(), "size": b.len()})).collect::<Vec<_>>(),
        }))
        .unwrap();
        let tag = format!("t{n}");
        let Ok(resp) = client
            .put(format!("{base}/v2/{repo}/manifests/{tag}"))
            .header("content-type", OCI_MANIFEST)
            .body(manifest.clone())
            .send()
            .await
        else {
            return;
        };
        if resp.status() != StatusCode::CREATED {
            return;
        }
        ledger.lock().unwrap().images.push(AckedImage { repo, tag, manifest: Digest::sha256_of(&manifest), layers });
    }
}

/// Every published blob file must hash to its name: no partial content is ever visible.
fn assert_no_partial_blobs(data_dir: &Path) -> usize {
    let mut checked = 0;
    let root = data_dir.join("blobs/sha256");
    let Ok(prefixes) = std::fs::read_dir(&root) else {
        return 0;
    };
    for prefix in prefixes {
        for file in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let actual = Digest::sha256_of(&std::fs::read(&path).unwrap());
            assert_eq!(actual.hex(), name, "blob file {} does not match its name", path.display());
            checked += 1;
        }
    }
    checked
}

async fn verify(berth: &Berth, ledger: &Mutex<Ledger>) -> (usize, usize) {
    let client = admin_client();
    let images: Vec<_> = ledger
        .lock()
        .unwrap()
        .images
        .iter()
        .map(|i| (i.repo.clone(), i.tag.clone(), i.manifest.clone(), i.layers.clone()))
        .collect();
    for (repo, tag, manifest, layers) in &images {
        let resp = client.head(berth.url(&format!("/v2/{repo}/manifests/{tag}"))).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "acknowledged {repo}:{tag} is missing");
        assert_eq!(resp.headers()["docker-content-digest"].to_str().unwrap(), manifest.as_str());
        for (digest, bytes) in layers {
            let got = client.get(berth.url(&format!("/v2/{repo}/blobs/{digest}"))).send().await.unwrap();
            assert_eq!(got.status(), StatusCode::OK, "acknowledged blob {digest} is missing");
            assert_eq!(&got.bytes().await.unwrap()[..], &bytes[..], "blob {digest} differs");
        }
    }
    // Upload sessions continue from at least the acknowledged offset, and complete correctly.
    let uploads: Vec<_> = std::mem::take(&mut ledger.lock().unwrap().uploads);
    for u in &uploads {
        let digest = Digest::sha256_of(&u.data);
        let blob_url = berth.url(&format!("/v2/{}/blobs/{digest}", u.repo));
        let resp = client.get(berth.url(&u.location)).send().await.unwrap();
        if resp.status() == StatusCode::NOT_FOUND {
            // The kill came after the final PUT committed but before its answer: the session is
            // closed, and the blob must be complete.
            let got = client.get(&blob_url).send().await.unwrap();
            assert_eq!(got.status(), StatusCode::OK, "upload {} vanished without its blob", u.location);
            assert_eq!(&got.bytes().await.unwrap()[..], &u.data[..]);
            continue;
        }
        assert_eq!(resp.status(), StatusCode::NO_CONTENT, "acknowledged upload {} is gone", u.location);
        let range = resp.headers()["range"].to_str().unwrap();
        let have: usize = range.trim_start_matches("0-").parse::<usize>().unwrap() + 1;
        assert!(have >= u.acked, "upload {} has {have} bytes, {} were acknowledged", u.location, u.acked);
        let mut put = client.put(berth.url(&format!("{}?digest={digest}", u.location)));
        if have < u.data.len() {
            put = put.header("content-range", format!("{have}-{}", u.data.len() - 1)).body(u.data[have..].to_vec());
        }
        let resp = put.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED, "finishing {} after the crash", u.location);
        let got = client.get(&blob_url).send().await.unwrap();
        assert_eq!(&got.bytes().await.unwrap()[..], &u.data[..]);
    }
    (images.len(), uploads.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_pushes_survive_sigkill() {
    let rounds: usize = std::env::var("BERTH_CRASH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(4);
    let seed: u64 = std::env::var("BERTH_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("crash test: {rounds} rounds, BERTH_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for round in 0..rounds {
        let berth = Berth::start(dir.path());
        let (images, uploads) = verify(&berth, &ledger).await;
        let blobs = assert_no_partial_blobs(dir.path());
        eprintln!(
            "round {round}: verified {images} images, finished {uploads} interrupted uploads, {blobs} blob files whole"
        );
        let base = format!("http://{}", berth.addr);
        let tasks: Vec<_> = (0..WORKERS)
            .map(|i| tokio::spawn(worker(base.clone(), i + round * WORKERS, seed, ledger.clone())))
            .collect();
        tokio::time::sleep(Duration::from_millis(300 + rng.below(1500))).await;
        berth.kill();
        for t in tasks {
            t.await.unwrap();
        }
    }
    let berth = Berth::start(dir.path());
    let (images, _) = verify(&berth, &ledger).await;
    assert_no_partial_blobs(dir.path());
    assert!(images > 0, "no push was acknowledged before the kills: the test proved nothing");
}
