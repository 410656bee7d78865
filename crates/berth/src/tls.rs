//! TLS on the listener (Harbor's `https` and `expose.tls`): the certificate and key files,
//! reread whenever they change on disk (cert-manager renews them in place), or, with none
//! given (`certSource: auto`), a certificate signed by a CA that Berth makes once and keeps in
//! the data directory or, shared by replicas, sealed in the database; `GET
//! /api/v2.0/systeminfo/getcert` serves that CA, as Harbor's does, for the docker CLI's
//! `certs.d`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{CipherSuite, SupportedCipherSuite};

use berth::config::Tls;

/// The TLS 1.2 suites `strong_ssl_ciphers` keeps: Harbor's strong list (AES-256-GCM and
/// ChaCha20-Poly1305 with ECDHE). rustls offers no CBC suite at all, so without the option the
/// only difference is AES-128-GCM; TLS 1.3's suites are all AEAD and always offered.
const STRONG_TLS12: [CipherSuite; 4] = [
    CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// The listener's TLS, and the CA to serve when Berth made it.
pub struct ServerTls {
    pub config: Arc<rustls::ServerConfig>,
    pub ca_pem: Option<String>,
}

fn provider(strong: bool) -> CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    if strong {
        provider.cipher_suites.retain(|s| match s {
            SupportedCipherSuite::Tls13(_) => true,
            SupportedCipherSuite::Tls12(s) => STRONG_TLS12.contains(&s.common.suite),
        });
    }
    provider
}

/// A certificate chain and its key from PEM files.
fn load(provider: &CryptoProvider, cert: &Path, key: &Path) -> anyhow::Result<Arc<CertifiedKey>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading tls.cert_file {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing tls.cert_file {}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "tls.cert_file {} holds no certificate", cert.display());
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading tls.key_file {}", key.display()))?;
    certified(provider, chain, key)
}

fn certified(
    provider: &CryptoProvider,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<Arc<CertifiedKey>> {
    let key = provider.key_provider.load_private_key(key).context("the TLS private key")?;
    let certified = CertifiedKey::new(chain, key);
    certified.keys_match().context("the TLS key does not match the certificate")?;
    Ok(Arc::new(certified))
}

/// What tells a file's new version from its old: modification time and length.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len())))
}

/// The certificate of the files, reread for the handshake after they change. A change that
/// does not load (a key written before its certificate) keeps the last good pair until the
/// pair loads.
struct FileCert {
    provider: CryptoProvider,
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<((Stamp, Stamp), Arc<CertifiedKey>)>,
}

impl std::fmt::Debug for FileCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCert").field("cert", &self.cert).field("key", &self.key).finish()
    }
}

impl ResolvesServerCert for FileCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // Two stats per handshake: cheap beside the handshake itself.
        let now = (stamp(&self.cert), stamp(&self.key));
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.0 != now {
            match load(&self.provider, &self.cert, &self.key) {
                Ok(key) => {
                    tracing::info!(file = %self.cert.display(), "serving the renewed TLS certificate");
                    *current = (now, key);
                }
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "the TLS files changed but do not load yet"),
            }
        }
        Some(current.1.clone())
    }
}

/// The automatic certificate: the same for every handshake.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// The CA's name: a server certificate names its issuer by it, so one signed by a CA rebuilt
/// from the kept key chains to the kept CA certificate.
fn ca_params() -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CommonName, "Berth CA");
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "Berth");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    params
}

fn this_year() -> i32 {
    let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    1970 + (secs / 31_557_600) as i32
}

/// A new CA, valid ten years: its certificate and its key (PEM).
pub fn make_ca() -> anyhow::Result<(String, String)> {
    let key = rcgen::KeyPair::generate().context("generating the CA key")?;
    let mut params = ca_params();
    params.not_before = rcgen::date_time_ymd(this_year() - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(this_year() + 10, 1, 1);
    let cert = params.self_signed(&key).context("signing the CA certificate")?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A server certificate for `hosts` (names or addresses), valid a year, signed by the CA key.
fn issue(ca_key_pem: &str, hosts: &[String]) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let ca_key = rcgen::KeyPair::from_pem(ca_key_pem).context("the kept CA key")?;
    let issuer = rcgen::Issuer::new(ca_params(), ca_key);
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CommonName, hosts.first().cloned().unwrap_or_default());
    for host in hosts {
        params.subject_alt_names.push(match host.parse::<std::net::IpAddr>() {
            Ok(ip) => rcgen::SanType::IpAddress(ip),
            Err(_) => rcgen::SanType::DnsName(host.clone().try_into().with_context(|| format!("tls.hosts: {host:?}"))?),
        });
    }
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = rcgen::date_time_ymd(this_year() - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(this_year() + 1, 12, 31);
    let key = rcgen::KeyPair::generate().context("generating the server key")?;
    let cert = params.signed_by(&key, &issuer).context("signing the server certificate")?;
    let key = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| anyhow::anyhow!("the server key: {e}"))?;
    Ok((vec![cert.der().clone()], key))
}

/// The listener's TLS from `tls.*`: files, or the automatic certificate for `hosts`.
pub async fn server_tls(
    tls: &Tls,
    hosts: &[String],
    ca: impl std::future::Future<Output = anyhow::Result<(String, String)>>,
) -> anyhow::Result<ServerTls> {
    let provider = provider(tls.strong_ssl_ciphers);
    let (resolver, ca_pem): (Arc<dyn ResolvesServerCert>, Option<String>) = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let loaded = load(&provider, cert, key)?;
            let stamps = (stamp(cert), stamp(key));
            let resolver = FileCert {
                provider: provider.clone(),
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                current: Mutex::new((stamps, loaded)),
            };
            (Arc::new(resolver), None)
        }
        (None, None) => {
            let (ca_cert, ca_key) = ca.await?;
            let (chain, key) = issue(&ca_key, hosts)?;
            (Arc::new(Fixed(certified(&provider, chain, key)?)), Some(ca_cert))
        }
        _ => anyhow::bail!("tls.cert_file and tls.key_file go together"),
    };
    let builder = rustls::ServerConfig::builder_with_provider(Arc::new(provider.clone()))
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .context("TLS versions")?;
    let builder = match &tls.client_ca_file {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path)
                .with_context(|| format!("reading tls.client_ca_file {}", path.display()))?
            {
                roots.add(cert.with_context(|| format!("parsing tls.client_ca_file {}", path.display()))?)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::new(provider))
                .build()
                .context("tls.client_ca_file")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(ServerTls { config: Arc::new(config), ca_pem })
}
