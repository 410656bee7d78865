//! TLS on the listener, with real clients: curl and openssl s_client, skopeo, podman, oras. The
//! automatic certificate chains to the CA `getcert` serves (kept across restarts); files are
//! reread when replaced; `strong_ssl_ciphers` drops AES-128 from TLS 1.2; HTTP/2 by ALPN;
//! mutual TLS; plain HTTP beside TLS only when asked.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_version} %{http_code}"])
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The SHA-256 fingerprint of the certificate a TLS handshake with `addr` shows, with these
/// extra `s_client` arguments; `None` when the handshake fails.
fn served_fingerprint(addr: &str, extra: &[&str]) -> Option<String> {
    let handshake = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {addr} {} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256",
            extra.join(" ")
        ))
        .output()
        .unwrap();
    let text = stdout(&handshake);
    text.contains("Fingerprint").then_some(text)
}

#[test]
fn the_automatic_certificate_chains_to_the_ca_getcert_serves() {
    if !have("curl") || !have("openssl") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let metrics_port = free_port().to_string();
    let env = [
        ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("BERTH_TLS__ENABLED", "true"),
        ("BERTH_METRICS__PORT", metrics_port.as_str()),
    ];
    let berth = Berth::start_with(data.path(), &env);
    let base = format!("https://{}", berth.addr);
    // Not trusted yet: refused.
    let refused = curl(&[&format!("{base}/v2/")]);
    assert_eq!(refused.status.code(), Some(60), "curl trusts no certificate of Berth's own CA yet");
    let ca = data.path().join("ca.crt");
    let got = Command::new("curl")
        .args(["-sk", "-o"])
        .arg(&ca)
        .args(["-w", "%{http_code}", &format!("{base}/api/v2.0/systeminfo/getcert")])
        .output()
        .unwrap();
    assert_eq!(stdout(&got), "200");
    let ca_path = ca.display().to_string();
    // Trusted with it, over HTTP/2 when asked and HTTP/1.1 otherwise; the challenge is https.
    assert_eq!(stdout(&curl(&["--cacert", &ca_path, "--http2", &format!("{base}/v2/")])), "2 401");
    assert_eq!(stdout(&curl(&["--cacert", &ca_path, "--http1.1", &format!("{base}/v2/")])), "1.1 401");
    let head = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "--cacert", &ca_path])
        .arg(format!("{base}/v2/"))
        .output()
        .unwrap();
    assert!(stdout(&head).contains("realm=\"https://"), "{}", stdout(&head));
    // The metrics port speaks TLS too.
    let metrics = curl(&["--cacert", &ca_path, &format!("https://127.0.0.1:{metrics_port}/metrics")]);
    assert_eq!(stdout(&metrics), "2 200");
    let info = Command::new("curl")
        .args(["-s", "--cacert", &ca_path, "-u", ADMIN_CREDS])
        .arg(format!("{base}/api/v2.0/systeminfo"))
        .output()
        .unwrap();
    assert!(stdout(&info).contains("\"has_ca_root\":true"), "{}", stdout(&info));
    // The CA is kept: after a restart, the new certificate chains to the same one.
    drop(berth);
    let berth = Berth::start_with(data.path(), &env);
    let again = curl(&["--cacert", &ca_path, &format!("https://{}/v2/", berth.addr)]);
    assert_eq!(stdout(&again), "2 401");
    // skopeo trusts it through a certs directory, as the docker CLI's certs.d.
    if have("skopeo") && have("umoci") {
        let work = tempfile::tempdir().unwrap();
        umoci_image(work.path(), "v1");
        let certs = work.path().join("certs");
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::copy(&ca, certs.join("ca.crt")).unwrap();
        let src = format!("oci:{}:v1", work.path().join("layout").display());
        let remote = format!("docker://{}/library/app:v1", berth.addr);
        let copy = |cert_dir: &Path| {
            Command::new("skopeo")
                .args(["copy", "--dest-cert-dir"])
                .arg(cert_dir)
                .args(["--dest-creds", ADMIN_CREDS, &src, &remote])
                .output()
                .unwrap()
        };
        let untrusted = copy(work.path());
        assert!(!untrusted.status.success(), "skopeo must refuse an unknown CA");
        let trusted = copy(&certs);
        assert!(trusted.status.success(), "{}", String::from_utf8_lossy(&trusted.stderr));
        let inspect = Command::new("skopeo")
            .args(["inspect", "--raw", "--cert-dir"])
            .arg(&certs)
            .args(["--creds", ADMIN_CREDS, &remote])
            .output()
            .unwrap();
        assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stderr));
        // podman pulls it through the same certs directory.
        if have("podman") {
            let storage = work.path().join("podman");
            let pulled = podman(&storage)
                .args(["pull", "--cert-dir"])
                .arg(&certs)
                .args(["--creds", ADMIN_CREDS, &format!("{}/library/app:v1", berth.addr)])
                .output()
                .unwrap();
            assert!(pulled.status.success(), "{}", String::from_utf8_lossy(&pulled.stderr));
        }
        // oras pushes an artifact with the CA (`--ca-file`) and pulls it back; without it, it
        // refuses the certificate.
        if let Some(oras) = sid_client("oras") {
            let files = work.path().join("oras");
            std::fs::create_dir_all(files.join("out")).unwrap();
            std::fs::write(files.join("notes.txt"), "pushed by oras over TLS\n").unwrap();
            let target = format!("{}/library/notes:v1", berth.addr);
            let oras_cmd = |args: &[&str]| {
                Command::new(&oras)
                    .current_dir(&files)
                    .env("HOME", &files)
                    .args(args)
                    .args(["-u", "admin", "-p", ADMIN_PASSWORD])
                    .output()
                    .unwrap()
            };
            let untrusted = oras_cmd(&["push", &target, "notes.txt"]);
            assert!(!untrusted.status.success(), "oras must refuse an unknown CA");
            assert!(String::from_utf8_lossy(&untrusted.stderr).contains("certificate"));
            let pushed = oras_cmd(&["push", "--ca-file", &ca_path, &target, "notes.txt"]);
            assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
            let pulled = oras_cmd(&["pull", "--ca-file", &ca_path, "-o", "out", &target]);
            assert!(pulled.status.success(), "{}", String::from_utf8_lossy(&pulled.stderr));
            assert_eq!(std::fs::read_to_string(files.join("out/notes.txt")).unwrap(), "pushed by oras over TLS\n");
        }
        // The docker CLI, with the CA in its certs.d, as Harbor's guide installs it.
        if have("docker") {
            let docker = |config: &Path| {
                Command::new("docker")
                    .env("DOCKER_CONFIG", config)
                    .args(["manifest", "inspect", &format!("{}/library/app:v1", berth.addr)])
                    .output()
                    .unwrap()
            };
            // (The docker CLI takes loopback registries as insecure, so it cannot be shown to
            // refuse here; it is shown to work the way the guide sets it up.)
            let config = work.path().join("docker-config");
            let certs_d = Path::new("/etc/docker/certs.d").join(&berth.addr);
            std::fs::create_dir_all(&certs_d).unwrap();
            std::fs::copy(&ca, certs_d.join("ca.crt")).unwrap();
            let out = docker(&config);
            let _ = std::fs::remove_dir_all(&certs_d);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert!(String::from_utf8_lossy(&out.stdout).contains("schemaVersion"));
        }
    }
}

#[test]
fn certificate_files_are_reread_when_replaced_and_ciphers_follow_the_option() {
    if !have("curl") || !have("openssl") {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    make_ca(certs.path(), "ca");
    make_server_certificate_for(certs.path(), "ca", "DNS:localhost,IP:127.0.0.1");
    let data = tempfile::tempdir().unwrap();
    let cert = certs.path().join("server.crt").display().to_string();
    let key = certs.path().join("server.key").display().to_string();
    let env = [
        ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("BERTH_TLS__ENABLED", "true"),
        ("BERTH_TLS__CERT_FILE", cert.as_str()),
        ("BERTH_TLS__KEY_FILE", key.as_str()),
    ];
    let berth = Berth::start_with(data.path(), &env);
    let ca = certs.path().join("ca.crt").display().to_string();
    // HTTP/2 unless the client asks for HTTP/1.1.
    assert_eq!(stdout(&curl(&["--cacert", &ca, &format!("https://{}/v2/", berth.addr)])), "2 401");
    let first = served_fingerprint(&berth.addr, &[]).expect("a handshake");
    // Without strong_ssl_ciphers, TLS 1.2 with AES-128-GCM is offered.
    let aes128 = ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"];
    assert!(served_fingerprint(&berth.addr, &aes128).is_some());
    // getcert: no CA of Berth's own to serve.
    let getcert = curl(&["--cacert", &ca, &format!("https://{}/api/v2.0/systeminfo/getcert", berth.addr)]);
    assert_eq!(stdout(&getcert), "2 404");

    // Renewed in place (a new key and certificate from the same CA): the next connection
    // gets it, without a restart.
    make_server_certificate_for(certs.path(), "ca", "DNS:localhost,IP:127.0.0.1");
    let second = served_fingerprint(&berth.addr, &[]).expect("a handshake");
    assert_ne!(first, second, "the replaced certificate is served");
    assert_eq!(stdout(&curl(&["--cacert", &ca, &format!("https://{}/v2/", berth.addr)])), "2 401");
    drop(berth);

    // strong_ssl_ciphers: TLS 1.2 keeps AES-256-GCM and ChaCha20 only; TLS 1.3 as ever.
    let mut strong = env.to_vec();
    strong.push(("BERTH_TLS__STRONG_SSL_CIPHERS", "true"));
    let berth = Berth::start_with(data.path(), &strong);
    assert!(served_fingerprint(&berth.addr, &aes128).is_none(), "AES-128 refused");
    assert!(served_fingerprint(&berth.addr, &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"]).is_some());
    assert!(served_fingerprint(&berth.addr, &["-tls1_3"]).is_some());
    assert!(served_fingerprint(&berth.addr, &["-tls1_1"]).is_none(), "TLS 1.1 refused");
}

#[test]
fn mutual_tls_and_plain_http_beside_it() {
    if !have("curl") || !have("openssl") {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    make_ca(certs.path(), "ca");
    make_server_certificate_for(certs.path(), "ca", "DNS:localhost,IP:127.0.0.1");
    make_ca(certs.path(), "clients");
    // A client certificate from the clients' CA.
    let mut args = vec!["req"];
    args.extend(EC_KEY);
    args.extend(["-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=ci"]);
    openssl(certs.path(), &args);
    // (An extension makes it a version 3 certificate, which WebPKI requires.)
    std::fs::write(certs.path().join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    openssl(
        certs.path(),
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "clients.crt",
            "-CAkey",
            "clients.key",
            "-CAcreateserial",
            "-out",
            "client.crt",
            "-days",
            "2",
            "-extfile",
            "client.ext",
        ],
    );
    let path = |f: &str| certs.path().join(f).display().to_string();
    let plain_port = free_port();
    let plain_addr = format!("127.0.0.1:{plain_port}");
    let (cert, key, clients) = (path("server.crt"), path("server.key"), path("clients.crt"));
    let env = [
        ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("BERTH_TLS__ENABLED", "true"),
        ("BERTH_TLS__CERT_FILE", cert.as_str()),
        ("BERTH_TLS__KEY_FILE", key.as_str()),
        ("BERTH_TLS__CLIENT_CA_FILE", clients.as_str()),
        ("BERTH_TLS__HTTP_ADDR", plain_addr.as_str()),
    ];
    let data = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(data.path(), &env);
    let url = format!("https://{}/v2/", berth.addr);
    let without = curl(&["--cacert", &path("ca.crt"), &url]);
    assert!(!without.status.success() || stdout(&without).ends_with(" 000"), "no client certificate: refused");
    let with = curl(&["--cacert", &path("ca.crt"), "--cert", &path("client.crt"), "--key", &path("client.key"), &url]);
    assert_eq!(stdout(&with), "2 401");
    // The plain listener, for an ingress that terminates TLS in front.
    assert_eq!(stdout(&curl(&[&format!("http://{plain_addr}/v2/")])), "1.1 401");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_database_share_the_automatic_ca() {
    let Some(admin_url) = postgres_url() else { return };
    if !have("curl") {
        return;
    }
    let mut env = external_database_env(&admin_url).await;
    env.push(("BERTH_TLS__ENABLED".into(), "true".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let replicas: Vec<Berth> = dirs.iter().map(|d| Berth::start_with(d.path(), &env)).collect();
    let getcert = |addr: &str| {
        let out = Command::new("curl").args(["-sk", &format!("https://{addr}/api/v2.0/systeminfo/getcert")]).output();
        String::from_utf8(out.unwrap().stdout).unwrap()
    };
    let (a, b) = (getcert(&replicas[0].addr), getcert(&replicas[1].addr));
    assert!(a.starts_with("-----BEGIN CERTIFICATE-----"), "{a}");
    assert_eq!(a, b, "one CA for the installation");
    // Each replica's certificate chains to it.
    let ca = dirs[0].path().join("ca.crt");
    std::fs::write(&ca, &a).unwrap();
    for r in &replicas {
        let ok = curl(&["--cacert", &ca.display().to_string(), &format!("https://{}/v2/", r.addr)]);
        assert_eq!(stdout(&ok), "2 401");
    }
}
