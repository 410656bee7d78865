//! Password hashing on a fixed set of workers, behind a bounded queue.
//!
//! Argon2id is deliberately slow and memory-hard: each run fills 19 MiB. Run on the async
//! runtime's blocking pool, every concurrent check allocates its own 19 MiB on one of up to
//! 512 threads, and the allocator keeps what those threads freed: a few hundred concurrent
//! wrong passwords grew the process by gigabytes. Here a few threads (one per core by default)
//! each own one memory area for the life of the process and reuse it for every hash, so the
//! memory that hashing takes is `workers × 19 MiB` whatever the load; checks beyond the queue
//! are refused at once with [`HashingError::Busy`], which the API answers with 503 and
//! `Retry-After` rather than letting callers pile up.
//!
//! The `argon2` crate verifies a PHC string only with memory it allocates itself; verifying
//! with the worker's memory means re-deriving the hash from the string's parameters and salt
//! and comparing in constant time, which is what its own verifier does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashingError {
    /// Every worker is busy and the queue is full: try again shortly.
    #[error("too many password checks are waiting; try again shortly")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// The most memory one stored hash may ask of a worker (in KiB, Argon2's `m` parameter):
/// hashes are Berth's own, so anything above this is not one of them.
const MAX_M_COST: u32 = 256 * 1024;

enum Job {
    Verify { secret: Vec<u8>, phc: String, reply: tokio::sync::oneshot::Sender<bool> },
    Hash { secret: Vec<u8>, reply: tokio::sync::oneshot::Sender<Result<String, HashingError>> },
}

/// The hashing workers. Cloning shares them.
#[derive(Clone)]
pub struct PasswordWorkers {
    queue: mpsc::SyncSender<Job>,
    inner: Arc<Shared>,
}

struct Shared {
    workers: usize,
    capacity: usize,
    /// Jobs accepted and not yet finished (waiting or running).
    pending: AtomicUsize,
}

impl PasswordWorkers {
    /// `workers` threads (at least one), and at most `queue` checks waiting beyond those running.
    pub fn new(workers: usize, queue: usize) -> Result<PasswordWorkers, HashingError> {
        let workers = workers.max(1);
        // The channel holds every accepted job (those a worker has yet to take included): the
        // count of pending jobs, not the channel, decides what is accepted.
        let (tx, rx) = mpsc::sync_channel::<Job>(queue + workers);
        let rx = Arc::new(Mutex::new(rx));
        let inner = Arc::new(Shared { workers, capacity: queue + workers, pending: AtomicUsize::new(0) });
        for n in 0..workers {
            let rx = rx.clone();
            let inner = inner.clone();
            std::thread::Builder::new()
                .name(format!("berth-argon2-{n}"))
                .spawn(move || worker(&rx, &inner))
                .map_err(|e| HashingError::Failed(format!("starting a hashing thread: {e}")))?;
        }
        Ok(PasswordWorkers { queue: tx, inner })
    }

    /// One worker per core the process may use.
    pub fn per_core(queue: usize) -> Result<PasswordWorkers, HashingError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        PasswordWorkers::new(cores, queue)
    }

    /// Threads that hash.
    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// Checks accepted and not yet answered.
    pub fn pending(&self) -> usize {
        self.inner.pending.load(Ordering::Relaxed)
    }

    fn submit(&self, job: Job) -> Result<(), HashingError> {
        // Counted before sending, so that a worker finishing it cannot count it down first.
        let before = self.inner.pending.fetch_add(1, Ordering::AcqRel);
        if before >= self.inner.capacity {
            self.inner.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(HashingError::Busy);
        }
        match self.queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.inner.pending.fetch_sub(1, Ordering::AcqRel);
                Err(match e {
                    mpsc::TrySendError::Full(_) => HashingError::Busy,
                    mpsc::TrySendError::Disconnected(_) => HashingError::Failed("the hashing workers stopped".into()),
                })
            }
        }
    }

    /// Whether `secret` matches the PHC string `phc` (an unparsable one never matches).
    pub async fn verify(&self, secret: &str, phc: &str) -> Result<bool, HashingError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(Job::Verify { secret: secret.as_bytes().to_vec(), phc: phc.to_string(), reply })?;
        answer.await.map_err(|_| HashingError::Failed("a hashing worker stopped".into()))
    }

    /// An Argon2id PHC string of `secret` with a random salt.
    pub async fn hash(&self, secret: &str) -> Result<String, HashingError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(Job::Hash { secret: secret.as_bytes().to_vec(), reply })?;
        answer.await.map_err(|_| HashingError::Failed("a hashing worker stopped".into()))?
    }
}

fn worker(rx: &Mutex<mpsc::Receiver<Job>>, shared: &Shared) {
    // This thread's Argon2 memory, grown to the largest hash seen and then reused.
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = {
            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            rx.recv()
        };
        let Ok(job) = job else { return };
        // Counted down before answering, so that a caller that has its answer sees it done.
        match job {
            Job::Verify { secret, phc, reply } => {
                let ok = verify_with(&mut memory, &secret, &phc);
                shared.pending.fetch_sub(1, Ordering::AcqRel);
                let _ = reply.send(ok);
            }
            Job::Hash { secret, reply } => {
                let hashed = hash_with(&mut memory, &secret);
                shared.pending.fetch_sub(1, Ordering::AcqRel);
                let _ = reply.send(hashed);
            }
        }
    }
}

fn blocks(memory: &mut Vec<Block>, params: &Params) -> Option<usize> {
    if params.m_cost() > MAX_M_COST {
        return None;
    }
    let n = params.block_count();
    if memory.len() < n {
        memory.resize(n, Block::new());
    }
    Some(n)
}

fn verify_with(memory: &mut Vec<Block>, secret: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else { return false };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else { return false };
    let Some(n) = blocks(memory, &params) else { return false };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    if argon.hash_password_into_with_memory(secret, salt, &mut out, &mut memory[..n]).is_err() {
        return false;
    }
    crate::password::constant_time_eq(&out, expected.as_bytes())
}

fn hash_with(memory: &mut Vec<Block>, secret: &[u8]) -> Result<String, HashingError> {
    let params = Params::default();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let n = blocks(memory, &params).ok_or_else(|| HashingError::Failed("parameters out of range".into()))?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(failed)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon
        .hash_password_into_with_memory(secret, &salt, &mut out, &mut memory[..n])
        .map_err(|e| HashingError::Failed(e.to_string()))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(failed)?,
        salt: Some(Salt::new(&salt).map_err(failed)?),
        hash: Some(Output::new(&out).map_err(failed)?),
    };
    Ok(phc.to_string())
}

fn failed(e: impl std::fmt::Display) -> HashingError {
    HashingError::Failed(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password;

    #[tokio::test]
    async fn verifies_what_the_library_hashes_and_the_library_verifies_what_it_hashes() {
        let workers = PasswordWorkers::new(1, 4).unwrap();
        let stored = password::hash("Harbor12345").unwrap();
        assert!(workers.verify("Harbor12345", &stored).await.unwrap());
        assert!(!workers.verify("Harbor12346", &stored).await.unwrap());
        assert!(!workers.verify("Harbor12345", "not a phc string").await.unwrap());
        let ours = workers.hash("Harbor12345").await.unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{ours}");
        assert!(password::verify("Harbor12345", &ours), "{ours}");
        assert!(!password::verify("Harbor12346", &ours));
        assert!(workers.verify("Harbor12345", &ours).await.unwrap());
        assert_ne!(ours, workers.hash("Harbor12345").await.unwrap(), "salted");
    }

    #[tokio::test]
    async fn a_hash_asking_for_absurd_memory_never_matches() {
        let workers = PasswordWorkers::new(1, 1).unwrap();
        let stored = password::hash("Harbor12345").unwrap().replace("m=19456", "m=4194304");
        assert!(!workers.verify("Harbor12345", &stored).await.unwrap());
    }

    #[tokio::test]
    async fn beyond_the_queue_checks_are_refused_at_once() {
        let workers = PasswordWorkers::new(1, 2).unwrap();
        let stored = password::hash("Harbor12345").unwrap();
        let checks: Vec<_> = (0..12)
            .map(|_| {
                let (w, s) = (workers.clone(), stored.clone());
                tokio::spawn(async move { w.verify("Harbor12345", &s).await })
            })
            .collect();
        let mut busy = 0;
        let mut done = 0;
        for c in checks {
            match c.await.unwrap() {
                Ok(true) => done += 1,
                Err(HashingError::Busy) => busy += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(done >= 3, "one running and two waiting are served: {done}");
        assert!(busy >= 1, "the rest are refused: {busy}");
        assert_eq!(done + busy, 12);
        assert_eq!(workers.pending(), 0);
        // Once the queue drains, checks are taken again.
        assert!(workers.verify("Harbor12345", &stored).await.unwrap());
    }
}
