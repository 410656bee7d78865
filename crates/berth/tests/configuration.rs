//! The system configuration in the real binary: the configuration file's starting values and
//! pins; a change made through one replica seen by another (through Redis, and without it by
//! age alone); and `read_only` refusing skopeo's push while its pulls go on.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

async fn configurations(client: &reqwest::Client, berth: &Berth) -> Value {
    client.get(berth.url("/api/v2.0/configurations")).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn the_file_gives_starting_values_and_pins_keys() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("berth.yml");
    std::fs::write(
        &config,
        "token:\n  expiration_minutes: 12\nsettings:\n  self_registration: true\n  read_only: false\n  pinned: [read_only]\n",
    )
    .unwrap();
    let berth = Berth::start_with_config(data.path(), &config);
    let client = admin_client();
    let c = configurations(&client, &berth).await;
    assert_eq!(c["token_expiration"], json!({"value": 12, "editable": true}));
    assert_eq!(c["self_registration"], json!({"value": true, "editable": true}));
    assert_eq!(c["read_only"], json!({"value": false, "editable": false}));
    let resp = client.put(berth.url("/api/v2.0/configurations")).json(&json!({"read_only": true})).send().await;
    let resp = resp.unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("pinned by the configuration file"), "{body}");
    // A key set through the API outlives the file's starting value, across a restart.
    let resp = client.put(berth.url("/api/v2.0/configurations")).json(&json!({"token_expiration": 20})).send().await;
    assert_eq!(resp.unwrap().status(), 200);
    drop(berth);
    let berth = Berth::start_with_config(data.path(), &config);
    assert_eq!(configurations(&client, &berth).await["token_expiration"]["value"], 20);

    // A starting value that breaks a rule stops the start.
    std::fs::write(&config, "settings:\n  robot_name_prefix: bot@\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("settings.robot_name_prefix"), "{stderr}");
}

/// How long after replica A took a change replica B answers by it; fails past `within`.
async fn seen_by_the_other(env: &[(String, String)], within: Duration) -> Duration {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let [a, b] = [Berth::start_with(dirs[0].path(), &env), Berth::start_with(dirs[1].path(), &env)];
    let client = admin_client();
    let push = |berth: &Berth| client.post(berth.url("/v2/library/app/blobs/uploads/")).send();
    assert_eq!(push(&b).await.unwrap().status(), 202);
    let resp = client.put(a.url("/api/v2.0/configurations")).json(&json!({"read_only": true})).send().await;
    assert_eq!(resp.unwrap().status(), 200);
    let changed = Instant::now();
    loop {
        if push(&b).await.unwrap().status() == 403 {
            break;
        }
        assert!(changed.elapsed() < within, "replica B still takes pushes after {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = changed.elapsed();
    assert_eq!(configurations(&client, &b).await["read_only"]["value"], true);
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_reaches_the_other_replica_with_and_without_redis() {
    let Some(admin_url) = postgres_url() else { return };
    // Without Redis nothing tells B: its settings age out within a second.
    let env = external_database_env(&admin_url).await;
    let took = seen_by_the_other(&env, Duration::from_secs(3)).await;
    eprintln!("without Redis, replica B refused pushes {took:?} after the change");
    let Some(redis) = redis_url() else { return };
    let addr = redis.trim_start_matches("redis://").split('/').next().unwrap().to_string();
    let mut env = external_database_env(&admin_url).await;
    env.push(("BERTH_REDIS__TYPE".into(), "external".into()));
    env.push(("BERTH_REDIS__EXTERNAL__ADDRS".into(), addr));
    let took = seen_by_the_other(&env, Duration::from_secs(3)).await;
    eprintln!("through Redis, replica B refused pushes {took:?} after the change");
}

#[test]
fn skopeo_cannot_push_to_a_read_only_registry_but_pulls() {
    if !have("skopeo") || !have("umoci") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let berth = Berth::start(data.path());
    umoci_image(work.path(), "v1");
    let src = format!("oci:{}:v1", work.path().join("layout").display());
    let copy = |tag: &str| {
        let mut cmd = Command::new("skopeo");
        let to = format!("docker://{}/library/app:{tag}", berth.addr);
        cmd.args(["copy", "--dest-tls-verify=false", "--dest-creds", ADMIN_CREDS, &src, &to]);
        cmd.output().unwrap()
    };
    assert!(copy("v1").status.success());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let configure = |read_only: bool| {
        rt.block_on(async {
            let resp = admin_client()
                .put(berth.url("/api/v2.0/configurations"))
                .json(&json!({"read_only": read_only}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        })
    };
    configure(true);
    let refused = copy("v2");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("read only mode"), "{stderr}");
    let remote = format!("docker://{}/library/app:v1", berth.addr);
    run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", "--creds", ADMIN_CREDS, &remote]));
    let dest = format!("oci:{}:pulled", work.path().join("pulled").display());
    run(Command::new("skopeo").args(["copy", "--src-tls-verify=false", "--src-creds", ADMIN_CREDS, &remote, &dest]));
    configure(false);
    assert!(copy("v2").status.success());
}
