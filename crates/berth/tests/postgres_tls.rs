//! `database.external.sslmode` against a PostgreSQL of the test's own, serving a certificate
//! for `localhost` signed by a CA the test makes: `verify-full` connects by that name and
//! refuses another name or another CA; `verify-ca` checks only the CA; `require` encrypts
//! without checking; the real binary starts on `verify-full`.

mod common;

use std::path::Path;

use common::*;

async fn connects(url: &str) -> Result<(), String> {
    berth_db::Db::connect(url, 1).await.map(|_| ()).map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_verifies_the_server_as_configured() {
    let Some(bin) = postgres_bin() else { return };
    if !have("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path(), "ca");
    make_ca(dir.path(), "other-ca");
    make_server_certificate(dir.path(), "ca");
    let pg = PostgresServer::start(&bin, dir.path(), true);
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

/// PostgreSQL's `cert` authentication (internal TLS): a role that may only sign in with a
/// client certificate from the server's CA whose CN is its name: refused without one, and the
/// binary is served with `cert_file`/`key_file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_signs_in_where_the_server_asks_for_one() {
    let Some(bin) = postgres_bin() else { return };
    if !have("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path(), "ca");
    make_server_certificate(dir.path(), "ca");
    make_client_certificate(dir.path(), "ca", "berth_cert");
    let mut pg = PostgresServer::start(&bin, dir.path(), true);
    let admin = sqlx::PgPool::connect(&pg.url("postgres")).await.unwrap();
    for sql in ["CREATE ROLE berth_cert LOGIN", "CREATE DATABASE certdb OWNER berth_cert"] {
        sqlx::query(sql).execute(&admin).await.unwrap();
    }
    admin.close().await;
    // Only a certificate lets berth_cert in; the superuser keeps trust for the test itself.
    let data = dir.path().join("data");
    let hba = std::fs::read_to_string(data.join("pg_hba.conf")).unwrap();
    std::fs::write(
        data.join("pg_hba.conf"),
        format!("hostssl all berth_cert 127.0.0.1/32 cert\nhost all berth_cert 127.0.0.1/32 reject\n{hba}"),
    )
    .unwrap();
    let ca = dir.path().join("ca.crt");
    let mut conf = std::fs::OpenOptions::new().append(true).open(data.join("postgresql.conf")).unwrap();
    std::io::Write::write_all(&mut conf, format!("ssl_ca_file = '{}'\n", ca.display()).as_bytes()).unwrap();
    pg.stop();
    pg.restart();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let base = format!(
        "postgres://berth_cert@localhost:{}/certdb?sslmode=verify-full&sslrootcert={}",
        pg.port,
        path("ca.crt")
    );
    assert!(connects(&base).await.is_err(), "without a certificate the role is refused");
    let with_cert = format!("{base}&sslcert={}&sslkey={}", path("client.crt"), path("client.key"));
    connects(&with_cert).await.expect("with its certificate");

    let port = pg.port.to_string();
    let data = tempfile::tempdir().unwrap();
    let berth = Berth::start_with(
        data.path(),
        &[
            ("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("BERTH_DATABASE__TYPE", "external"),
            ("BERTH_DATABASE__EXTERNAL__HOST", "localhost"),
            ("BERTH_DATABASE__EXTERNAL__PORT", &port),
            ("BERTH_DATABASE__EXTERNAL__USERNAME", "berth_cert"),
            ("BERTH_DATABASE__EXTERNAL__DATABASE", "certdb"),
            ("BERTH_DATABASE__EXTERNAL__SSLMODE", "verify-full"),
            ("BERTH_DATABASE__EXTERNAL__CA_FILE", &path("ca.crt")),
            ("BERTH_DATABASE__EXTERNAL__CERT_FILE", &path("client.crt")),
            ("BERTH_DATABASE__EXTERNAL__KEY_FILE", &path("client.key")),
        ],
    );
    let resp = common::http().get(berth.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}
