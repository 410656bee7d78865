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
