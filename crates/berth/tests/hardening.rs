//! The binary under the load an attacker or a careless client puts on it: bounded counts and
//! times, asserting bounds on memory and that the service still answers, never on speed.

mod common;

use common::*;

/// The most memory the process ever held (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024
}

/// Finding 1: 300 concurrent Basic logins with wrong passwords from one address once grew the
/// process to 5.7 GB (an Argon2 of 19 MiB on each of up to 512 blocking threads). Hashing now
/// runs on a fixed set of workers behind a bounded queue: what does not fit is refused with
/// 429 and `Retry-After`, memory stays bounded, and the registry keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_passwords_in_parallel_do_not_exhaust_memory() {
    let dir = tempfile::tempdir().unwrap();
    let berth = Berth::start(dir.path());
    let client = http_builder().pool_max_idle_per_host(0).build().unwrap();
    let url = berth.url("/api/v2.0/users/current");
    let logins: Vec<_> = (0..300)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let r = client.get(&url).basic_auth(format!("x{i}"), Some(format!("y{i}"))).send().await.unwrap();
                (r.status().as_u16(), r.headers().get("retry-after").is_some())
            })
        })
        .collect();
    let (mut refused, mut busy) = (0, 0);
    for login in logins {
        match login.await.unwrap() {
            (401, _) => refused += 1,
            (429, true) => busy += 1,
            other => panic!("a wrong password answered {other:?}"),
        }
    }
    assert_eq!(refused + busy, 300);
    assert!(busy > 0, "300 checks at once cannot all have been queued");
    let peak = peak_rss_mib(berth.child.id());
    assert!(peak <= 300, "the process grew to {peak} MiB under 300 concurrent wrong logins");
    // Still serving.
    let r = client.get(berth.url("/livez")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = client.get(berth.url("/v2/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    eprintln!("300 wrong logins: {refused} answered 401, {busy} answered 429; peak RSS {peak} MiB");
}
