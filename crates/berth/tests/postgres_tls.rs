//! `database.external.sslmode` against a PostgreSQL of the test's own, serving a certificate
//! for `localhost` signed by a CA the test makes: `verify-full` connects by that name and
//! refuses another name or another CA; `verify-ca` checks only the CA; `require` encrypts
//! without checking; the real binary starts on `verify-full`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// The directory of the newest installed PostgreSQL's programs.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    versions.pop()
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

struct Postgres {
    child: Child,
    port: u16,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_postgres(bin: &Path, dir: &Path) -> Postgres {
    let data = dir.join("data");
    if is_root() {
        run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir));
    }
    run(pg_command(bin, "initdb").arg("-D").arg(&data).args(["-U", "postgres", "--auth=trust", "-E", "UTF8"]));
    let port = free_port();
    let mut child = pg_command(bin, "postgres")
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "ssl=on"])
        .arg("-k")
        .arg(dir)
        .arg("-c")
        .arg(format!("ssl_cert_file={}", dir.join("server.crt").display()))
        .arg("-c")
        .arg(format!("ssl_key_file={}", dir.join("server.key").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start postgres");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            std::thread::sleep(Duration::from_millis(300));
            return Postgres { child, port };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("postgres did not start");
}

async fn connects(url: &str) -> Result<(), String> {
    berth_db::Db::connect(url, 1).await.map(|_| ()).map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_verifies_the_server_as_configured() {
    let Some(bin) = postgres_bin() else {
        assert!(std::env::var_os("BERTH_E2E_REQUIRED").is_none(), "PostgreSQL's programs are required");
        eprintln!("SKIPPED: no PostgreSQL installation under /usr/lib/postgresql");
        return;
    };
    if !have("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path(), "ca");
    make_ca(dir.path(), "other-ca");
    make_server_certificate(dir.path(), "ca");
    let pg = start_postgres(&bin, dir.path());
    let ca = dir.path().join("ca.crt");
    let other = dir.path().join("other-ca.crt");
    let url = |host: &str, mode: &str, ca: &Path| {
        format!("postgres://postgres@{host}:{}/postgres?sslmode={mode}&sslrootcert={}", pg.port, ca.display())
    };

    connects(&url("localhost", "verify-full", &ca)).await.expect("verify-full by the certificate's name");
    let wrong_name = connects(&url("127.0.0.1", "verify-full", &ca)).await;
    assert!(wrong_name.is_err(), "a name the certificate does not carry is refused");
    let wrong_ca = connects(&url("localhost", "verify-full", &other)).await;
    assert!(wrong_ca.is_err(), "a certificate from another CA is refused");
    connects(&url("127.0.0.1", "verify-ca", &ca)).await.expect("verify-ca checks the CA, not the name");
    connects(&format!("postgres://postgres@127.0.0.1:{}/postgres?sslmode=require", pg.port))
        .await
        .expect("require encrypts without verifying");

    // The binary, configured with Harbor's keys, serves on a verified connection.
    let port = pg.port.to_string();
    let ca_file = ca.to_string_lossy().into_owned();
    let data = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(
        data.path(),
        &[
            ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("BERTH_DATABASE__TYPE", "external"),
            ("BERTH_DATABASE__EXTERNAL__HOST", "localhost"),
            ("BERTH_DATABASE__EXTERNAL__PORT", &port),
            ("BERTH_DATABASE__EXTERNAL__DATABASE", "postgres"),
            ("BERTH_DATABASE__EXTERNAL__SSLMODE", "verify-full"),
            ("BERTH_DATABASE__EXTERNAL__CA_FILE", &ca_file),
        ],
    );
    let resp = common::http().get(berth.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}
