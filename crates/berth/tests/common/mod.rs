//! Runs the real `berth` binary for tests, and finds the real clients they drive.
#![allow(dead_code)] // each test file uses a different part of the helpers

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The administrator password of servers started with [`Berth::start`].
pub const ADMIN_PASSWORD: &str = "Harbor12345";
/// `user:password` of that administrator, as clients take it.
pub const ADMIN_CREDS: &str = "admin:Harbor12345";
/// The `Authorization` header value for the administrator.
pub const ADMIN_BASIC: &str = "Basic YWRtaW46SGFyYm9yMTIzNDU=";

pub struct Berth {
    pub child: Child,
    pub addr: String,
    pub data_dir: PathBuf,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Berth {
    /// Starts `berth serve` on a free loopback port over `data_dir`, and waits for its
    /// `listening on` line.
    /// Starts with the administrator password [`ADMIN_PASSWORD`].
    pub fn start(data_dir: &Path) -> Berth {
        Berth::start_with(data_dir, &[("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)])
    }

    pub fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Berth {
        Berth::start_command(data_dir, env, None)
    }

    /// Starts with a configuration file (and the administrator password [`ADMIN_PASSWORD`]).
    pub fn start_with_config(data_dir: &Path, config: &Path) -> Berth {
        Berth::start_command(data_dir, &[("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)], Some(config))
    }

    fn start_command(data_dir: &Path, env: &[(&str, &str)], config: Option<&Path>) -> Berth {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(data_dir);
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        cmd.env("BERTH_LOG__FORMAT", "text").stdout(Stdio::piped()).stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn berth");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let found = ["listening on http://", "listening on https://"]
                    .iter()
                    .find_map(|needle| line.find(needle).map(|i| i + needle.len()));
                if !sent && let Some(at) = found {
                    let rest = &line[at..];
                    // Up to a space (text) or a quote (JSON).
                    let addr: String = rest.chars().take_while(|c| !c.is_whitespace() && *c != '"').collect();
                    let _ = tx.send(addr);
                    sent = true;
                }
                log2.lock().unwrap().push(line);
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(30)).expect("berth did not report its address");
        Berth { child, addr, data_dir: data_dir.to_path_buf(), log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits up to `within` for a log line containing `needle`.
    pub async fn wait_for_log(&self, needle: &str, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if self.log().iter().any(|l| l.contains(needle)) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a client program is installed. When `BERTH_E2E_REQUIRED` is set (CI sets it), a
/// missing client fails the test instead of skipping it.
pub fn have(tool: &str) -> bool {
    let found =
        Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("BERTH_E2E_REQUIRED").is_none(),
            "{tool} is not installed and BERTH_E2E_REQUIRED is set"
        );
        eprintln!("SKIPPED: {tool} is not installed (run .ci/run to install the end-to-end clients)");
    }
    found
}

/// Whether `python3` can import each of `modules`; missing, the test skips, or fails when
/// `BERTH_E2E_REQUIRED` is set (scripts/install-test-deps installs them).
pub fn have_python_modules(modules: &[&str]) -> bool {
    let import = format!("import {}", modules.join(", "));
    let found = Command::new("python3").args(["-c", &import]).output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("BERTH_E2E_REQUIRED").is_none(),
            "python3 cannot {import:?} and BERTH_E2E_REQUIRED is set"
        );
        eprintln!("SKIPPED: python3 cannot {import:?} (run scripts/install-test-deps)");
    }
    found
}

/// A client unpacked from Debian's newer suites by `scripts/install-sid-clients` (`folder`:
/// `cosign2`, `cosign3`, `notation`, `oras`, `crane`), under `BERTH_CLIENTS_DIR` or the
/// checkout's `.test-clients`. Missing, the test skips, or fails when `BERTH_E2E_REQUIRED` is set.
pub fn sid_client(folder: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("BERTH_CLIENTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.test-clients"));
    let binary = dir.join(folder).join("usr/bin").join(folder.trim_end_matches(|c: char| c.is_ascii_digit()));
    if binary.is_file() {
        return Some(binary);
    }
    assert!(
        std::env::var_os("BERTH_E2E_REQUIRED").is_none(),
        "{} is missing and BERTH_E2E_REQUIRED is set (scripts/install-sid-clients fetches it)",
        binary.display()
    );
    eprintln!("SKIPPED: {} is missing (run scripts/install-sid-clients)", binary.display());
    None
}

/// Runs a command, panicking with its output if it fails; returns its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The PostgreSQL server for tests (`BERTH_TEST_POSTGRES_URL`), or `None` with a loud skip;
/// when `BERTH_E2E_REQUIRED` is set (CI sets it), its absence fails the test instead.
/// A test service's address from the environment; without it the caller skips, loudly, unless
/// `BERTH_E2E_REQUIRED` is set (CI), when that is a failure.
fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(std::env::var_os("BERTH_E2E_REQUIRED").is_none(), "{var} is not set and BERTH_E2E_REQUIRED is set");
            eprintln!("SKIPPED: {var} is not set (scripts/start-test-services gives one)");
            None
        }
    }
}

pub fn postgres_url() -> Option<String> {
    service_url("BERTH_TEST_POSTGRES_URL")
}

/// `host:port` of a `postgres://user[:password]@host:port/db` URL.
pub fn postgres_host_port(url: &str) -> String {
    url.split_once("://").unwrap().1.split('/').next().unwrap().rsplit_once('@').unwrap().1.to_string()
}

/// Points the `BERTH_DATABASE__*` variables of [`external_database_env`] at `proxy`.
pub fn through_proxy(env: &mut [(String, String)], proxy: &CuttableProxy) {
    for (k, v) in env.iter_mut() {
        match k.as_str() {
            "BERTH_DATABASE__EXTERNAL__HOST" => *v = "127.0.0.1".into(),
            "BERTH_DATABASE__EXTERNAL__PORT" => *v = proxy.addr.port().to_string(),
            _ => {}
        }
    }
}

/// The Redis server for tests (`BERTH_TEST_REDIS_URL`), or `None` with a loud skip; required
/// when `BERTH_E2E_REQUIRED` is set.
pub fn redis_url() -> Option<String> {
    service_url("BERTH_TEST_REDIS_URL")
}

pub fn s3_url() -> Option<String> {
    service_url("BERTH_TEST_S3_URL")
}

/// `storage` settings (as `BERTH_STORAGE__*` variables) for the bucket `berth-test` on the
/// S3-compatible server at `url`, under a fresh key prefix.
pub fn s3_storage_env(url: &str) -> Vec<(String, String)> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    [
        ("TYPE", "s3".to_string()),
        ("S3__BUCKET", "berth-test".into()),
        ("S3__REGION", "us-east-1".into()),
        ("S3__ENDPOINT", url.to_string()),
        ("S3__PATH_STYLE", "true".into()),
        ("S3__ACCESS_KEY", "berth-test".into()),
        ("S3__SECRET_KEY", "berth-test-secret".into()),
        ("S3__ROOT", format!("berth-{}-{nanos}", std::process::id())),
    ]
    .into_iter()
    .map(|(k, v)| (format!("BERTH_STORAGE__{k}"), v))
    .collect()
}

/// A client that sends the administrator's Basic credentials with every request.
pub fn admin_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", ADMIN_BASIC.parse().unwrap());
    http_builder().default_headers(headers).build().unwrap()
}

/// A free loopback port, for servers that cannot be told to pick one.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A fresh database on the test PostgreSQL server, as the `BERTH_DATABASE__*` variables that
/// point `berth serve` at it.
pub async fn external_database_env(admin_url: &str) -> Vec<(String, String)> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let name = format!("berth_test_{}_{nanos}", std::process::id());
    berth_db::create_postgres_database(admin_url, &name).await.unwrap();
    // postgres://user[:password]@host:port/db
    let rest = admin_url.split_once("://").unwrap().1;
    let auth = rest.split('/').next().unwrap().rsplit_once('@').unwrap().0;
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let host_port = postgres_host_port(admin_url);
    let (host, port) = host_port.split_once(':').unwrap_or((&host_port, "5432"));
    let mut env = vec![
        ("BERTH_DATABASE__TYPE".to_string(), "external".to_string()),
        ("BERTH_DATABASE__EXTERNAL__HOST".to_string(), host.to_string()),
        ("BERTH_DATABASE__EXTERNAL__PORT".to_string(), port.to_string()),
        ("BERTH_DATABASE__EXTERNAL__USERNAME".to_string(), user.to_string()),
        ("BERTH_DATABASE__EXTERNAL__DATABASE".to_string(), name),
        ("BERTH_ADMIN_PASSWORD".to_string(), ADMIN_PASSWORD.to_string()),
    ];
    if !password.is_empty() {
        env.push(("BERTH_DATABASE__EXTERNAL__PASSWORD".to_string(), password.to_string()));
    }
    env
}

/// A TCP proxy to `target` that can be cut (open connections dropped, new ones refused) and
/// restored: a dependency going away and coming back, without stopping a server that other
/// tests share.
pub struct CuttableProxy {
    pub addr: std::net::SocketAddr,
    enabled: std::sync::Arc<std::sync::atomic::AtomicBool>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl CuttableProxy {
    pub async fn start(target: String) -> CuttableProxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let enabled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Default::default();
        let (e, c) = (enabled.clone(), connections.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !e.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let target = target.clone();
                c.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        CuttableProxy { addr, enabled, connections, accept }
    }

    pub fn cut(&self) {
        self.enabled.store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub fn restore(&self) {
        self.enabled.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// Makes an OCI layout at `dir` with a tagged two-layer image, using umoci.
pub fn umoci_image(dir: &Path, tag: &str) {
    let layout = dir.join("layout");
    let image = format!("{}:{tag}", layout.display());
    run(Command::new("umoci").arg("init").arg("--layout").arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    for (i, content) in ["first layer\n", "second layer, a little longer\n"].iter().enumerate() {
        let root = dir.join(format!("rootfs{i}"));
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(root.join("data").join(format!("file{i}")), content.repeat(1000)).unwrap();
        run(Command::new("umoci").args(["insert", "--image", &image]).arg(root.join("data")).arg("/data"));
    }
}

/// Every blob file of an OCI layout, by name.
pub fn layout_blobs(layout: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        out.insert(entry.file_name().to_string_lossy().into_owned(), std::fs::read(entry.path()).unwrap());
    }
    out
}

/// podman with a private store under `root` (vfs, no daemon, no systemd).
pub fn podman(root: &Path) -> Command {
    let mut cmd = Command::new("podman");
    cmd.arg("--root").arg(root.join("root")).arg("--runroot").arg(root.join("run")).args([
        "--storage-driver",
        "vfs",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
    ]);
    cmd
}

pub fn openssl(dir: &Path, args: &[&str]) {
    run(Command::new("openssl").current_dir(dir).args(args));
}

pub const EC_KEY: [&str; 5] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/// A self-signed CA, `<name>.crt` and `<name>.key` in `dir`.
pub fn make_ca(dir: &Path, name: &str) {
    let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
    let mut args = vec!["req", "-x509"];
    args.extend(EC_KEY);
    args.extend(["-keyout", &key, "-out", &crt, "-days", "2", "-subj", "/CN=berth test CA"]);
    openssl(dir, &args);
}

/// `server.crt` and `server.key` for `localhost`, signed by the CA `ca`.
pub fn make_server_certificate(dir: &Path, ca: &str) {
    make_server_certificate_for(dir, ca, "DNS:localhost");
}

/// As [`make_server_certificate`], for the subject alternative names `san`
/// (`DNS:localhost,IP:127.0.0.1`).
pub fn make_server_certificate_for(dir: &Path, ca: &str, san: &str) {
    let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
    std::fs::write(dir.join("san.ext"), format!("subjectAltName={san}\n")).unwrap();
    let mut args = vec!["req"];
    args.extend(EC_KEY);
    args.extend(["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
    openssl(dir, &args);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
}

/// `client.crt` and `client.key` (PKCS#8) for the subject `cn`, signed by the CA `ca`, for
/// client authentication.
pub fn make_client_certificate(dir: &Path, ca: &str, cn: &str) {
    let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    let subject = format!("/CN={cn}");
    let mut args = vec!["req"];
    args.extend(EC_KEY);
    args.extend(["-keyout", "client.key", "-out", "client.csr", "-subj", &subject]);
    openssl(dir, &args);
    #[rustfmt::skip]
    openssl(dir, &["x509", "-req", "-in", "client.csr", "-CA", &ca_crt, "-CAkey", &ca_key, "-CAcreateserial",
        "-out", "client.crt", "-days", "2", "-extfile", "client.ext"]);
}

/// An HTTP client builder (with TLS support, which needs the process's crypto provider first).
pub fn http_builder() -> reqwest::ClientBuilder {
    berth_store::install_tls_provider();
    reqwest::Client::builder()
}

pub fn http() -> reqwest::Client {
    http_builder().build().unwrap()
}

/// The directory of the newest installed PostgreSQL's programs.
pub fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    let found = versions.pop();
    if found.is_none() {
        assert!(std::env::var_os("BERTH_E2E_REQUIRED").is_none(), "PostgreSQL's programs are required");
        eprintln!("SKIPPED: no PostgreSQL installation under /usr/lib/postgresql");
    }
    found
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Runs a PostgreSQL program, as the `postgres` user when we are root (it refuses root).
fn pg_command(bin: &Path, program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    }
}

/// A PostgreSQL server of the test's own (trust authentication, user `postgres`), which the
/// test may stop and start again on the same port and data.
pub struct PostgresServer {
    bin: PathBuf,
    dir: PathBuf,
    ssl: bool,
    pub port: u16,
    child: Option<Child>,
}

impl PostgresServer {
    /// A new cluster in `dir/data`, started; with `ssl`, serving `dir/server.crt` and `.key`.
    pub fn start(bin: &Path, dir: &Path, ssl: bool) -> PostgresServer {
        if is_root() {
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir));
        }
        let data = dir.join("data");
        run(pg_command(bin, "initdb").arg("-D").arg(&data).args(["-U", "postgres", "--auth=trust", "-E", "UTF8"]));
        let mut server =
            PostgresServer { bin: bin.to_path_buf(), dir: dir.to_path_buf(), ssl, port: free_port(), child: None };
        server.restart();
        server
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn restart(&mut self) {
        let mut cmd = pg_command(&self.bin, "postgres");
        cmd.arg("-D").arg(self.dir.join("data")).args([
            "-p",
            &self.port.to_string(),
            "-c",
            "listen_addresses=127.0.0.1",
        ]);
        cmd.arg("-k").arg(&self.dir);
        if self.ssl {
            cmd.args(["-c", "ssl=on", "-c"]).arg(format!("ssl_cert_file={}", self.dir.join("server.crt").display()));
            cmd.arg("-c").arg(format!("ssl_key_file={}", self.dir.join("server.key").display()));
        }
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start postgres");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                std::thread::sleep(Duration::from_millis(300));
                self.child = Some(child);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("postgres did not start");
    }

    /// Stops the server at once: PostgreSQL's immediate shutdown (SIGQUIT), which ends every
    /// session without a checkpoint, as a crash would; the next start recovers from the WAL.
    pub fn stop(&mut self) {
        let pid_file = self.dir.join("data").join("postmaster.pid");
        if let Some(pid) = std::fs::read_to_string(&pid_file).ok().and_then(|t| t.lines().next().map(str::to_string)) {
            let _ = Command::new("kill").args(["-QUIT", pid.trim()]).status();
        }
        if let Some(mut child) = self.child.take() {
            for _ in 0..100 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        for _ in 0..100 {
            if !pid_file.exists() && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("postgres did not stop");
    }

    /// The superuser's URL for `database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A redis-server of the test's own (no persistence), which the test may stop and start again
/// on the same port.
pub struct RedisServer {
    dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start(dir: &Path) -> RedisServer {
        let mut server = RedisServer { dir: dir.to_path_buf(), port: free_port(), child: None };
        server.restart();
        server
    }

    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .current_dir(&self.dir)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start");
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Pushes `data` as a blob of `repo` in one request (monolithic upload); its digest.
pub async fn push_blob(client: &reqwest::Client, berth: &Berth, repo: &str, data: &[u8]) -> berth_oci::Digest {
    let digest = berth_oci::Digest::sha256_of(data);
    let resp = client
        .post(berth.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
    digest
}
