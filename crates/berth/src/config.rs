//! Configuration: defaults, then a YAML file, then `BERTH_*` environment variables, then flags.

use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Serialized};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// The URL clients reach the registry at (used in redirects and, later, token realms).
    pub external_url: Option<String>,
    /// Where the embedded database and, by default, blobs are kept.
    pub data_dir: PathBuf,
    /// The first administrator's password, used only at first start
    /// (`BERTH_ADMIN_PASSWORD`); without it (or `admin_password_file`) one is generated.
    pub admin_password: Option<String>,
    /// A file holding the first administrator's password (`BERTH_ADMIN_PASSWORD_FILE`).
    pub admin_password_file: Option<PathBuf>,
    /// A file holding the installation's secret key, which seals secrets kept at rest; the
    /// same on every replica. Without it the key is generated once (in the database when it is
    /// external, else in the data directory).
    pub secret_key_file: Option<PathBuf>,
    pub http: Http,
    pub database: Database,
    pub redis: Redis,
    pub storage: Storage,
    pub log: Log,
    pub token: Token,
    pub maintenance: Maintenance,
    pub gc: Gc,
    pub jobs: Jobs,
    pub login: Login,
    pub audit: Audit,
    pub metrics: Metrics,
    pub trace: Trace,
    pub settings: SettingsFile,
    pub tls: Tls,
    pub proxy: Proxy,
    pub vulndb: VulnDb,
}

/// TLS on the listener (Harbor's `https` section and the chart's `expose.tls`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Tls {
    pub enabled: bool,
    /// The certificate (with its chain) and key, PEM; reread when they change. Without them,
    /// a certificate from Berth's own CA (`certSource: auto`).
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Names and addresses the automatic certificate is for; by default `localhost`,
    /// `127.0.0.1`, the listen address and `external_url`'s host.
    pub hosts: Vec<String>,
    /// TLS 1.2 with AES-256-GCM and ChaCha20 only (TLS 1.3 as always).
    pub strong_ssl_ciphers: bool,
    /// Clients must present a certificate these CAs signed (mutual TLS).
    pub client_ca_file: Option<PathBuf>,
    /// Plain HTTP too, on this address (for an ingress that terminates TLS in front).
    pub http_addr: Option<String>,
    /// The CA certificate (PEM) `GET /api/v2.0/systeminfo/getcert` serves (Harbor's
    /// `caSecretName`): the CA of `cert_file`, or of an ingress terminating TLS in front, so
    /// served whether or not `enabled` is. Without it, the automatic certificate's CA.
    pub ca_file: Option<PathBuf>,
}

impl Tls {
    /// The names the automatic certificate is for.
    pub fn hosts(&self, listen: &str, external_url: Option<&str>) -> Vec<String> {
        if !self.hosts.is_empty() {
            return self.hosts.clone();
        }
        let mut hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let listen_host = listen.rsplit_once(':').map_or(listen, |(h, _)| h).trim_matches(['[', ']']);
        if !listen_host.is_empty() && listen_host != "0.0.0.0" && listen_host != "::" {
            hosts.push(listen_host.to_string());
        }
        if let Some(url) = external_url {
            let rest = url.split_once("://").map_or(url, |(_, r)| r);
            let authority = rest.split('/').next().unwrap_or(rest);
            let host = match authority.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or(v6),
                None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
            };
            hosts.push(host.to_string());
        }
        hosts.sort();
        hosts.dedup();
        hosts
    }
}

/// Harbor's run-time settings (`/configurations`, `berth_core::settings::KEYS`) by their Harbor
/// names: the values they start at until changed through the API, and the keys `pinned` to
/// the file's value (which the API then refuses to change). `token.expiration_minutes` and
/// `audit.*` are the starting values of `token_expiration` and the audit keys; a key here wins
/// over them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SettingsFile {
    pub pinned: Vec<String>,
    #[serde(flatten)]
    pub values: std::collections::BTreeMap<String, serde_json::Value>,
}

impl Config {
    /// The starting values and pins of the system configuration, checked as the API checks
    /// a change.
    pub fn starting_settings(&self) -> anyhow::Result<berth_core::settings::StartingSettings> {
        let mut start = berth_core::settings::StartingSettings::default();
        let audit = &self.audit;
        let legacy = [
            ("token_expiration", serde_json::Value::from(self.token.expiration_minutes), "token.expiration_minutes"),
            (
                "disabled_audit_log_event_types",
                serde_json::Value::from(audit.disabled_audit_log_event_types.join(",")),
                "audit.disabled_audit_log_event_types",
            ),
            ("pull_audit_log_disable", audit.pull_audit_log_disable.into(), "audit.pull_audit_log_disable"),
            (
                "audit_log_forward_endpoint",
                audit.audit_log_forward_endpoint.clone().unwrap_or_default().into(),
                "audit.audit_log_forward_endpoint",
            ),
            ("skip_audit_log_database", audit.skip_audit_log_database.into(), "audit.skip_audit_log_database"),
        ];
        for (name, value, file_key) in legacy {
            start.set(name, &value).map_err(|e| anyhow::anyhow!("{file_key}: {e}"))?;
        }
        for (name, value) in &self.settings.values {
            start.set(name, value).map_err(|e| anyhow::anyhow!("settings.{name}: {e}"))?;
        }
        for name in &self.settings.pinned {
            start.pin(name).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        start.check().map_err(|e| anyhow::anyhow!("settings: {e}"))?;
        Ok(start)
    }
}

/// OpenTelemetry traces over OTLP/HTTP (Harbor's `trace` settings): a span per request, per
/// database call and per storage call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Trace {
    pub enabled: bool,
    /// The share of traces kept, 0 to 1 (a trace whose caller sampled it is kept).
    pub sample_rate: f64,
    /// `service.namespace` of the traces.
    pub namespace: String,
    /// More resource attributes.
    pub attributes: std::collections::BTreeMap<String, String>,
    pub otel: Otel,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Otel {
    /// The collector, `host:port` (or a URL).
    pub endpoint: String,
    pub url_path: String,
    /// Plain HTTP rather than HTTPS.
    pub insecure: bool,
    /// The CA certificates (PEM) that sign an HTTPS collector's certificate (internal TLS);
    /// else the public roots.
    pub ca_file: Option<PathBuf>,
    pub timeout_seconds: u64,
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            enabled: false,
            sample_rate: 1.0,
            namespace: String::new(),
            attributes: Default::default(),
            otel: Otel::default(),
        }
    }
}

impl Default for Otel {
    fn default() -> Self {
        Otel {
            endpoint: "127.0.0.1:4318".into(),
            url_path: "/v1/traces".into(),
            insecure: true,
            ca_file: None,
            timeout_seconds: 10,
        }
    }
}

impl Trace {
    /// The collector's URL for spans.
    pub fn url(&self) -> String {
        let path = &self.otel.url_path;
        if self.otel.endpoint.contains("://") {
            format!("{}{path}", self.otel.endpoint.trim_end_matches('/'))
        } else {
            let scheme = if self.otel.insecure { "http" } else { "https" };
            format!("{scheme}://{}{path}", self.otel.endpoint)
        }
    }
}

/// `/metrics` (Harbor's `metric` settings): on the main port for system administrators, and
/// on a port of its own, open to whoever reaches it, when `port` is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Metrics {
    pub enabled: bool,
    pub path: String,
    /// A port of its own, on the host of `http.addr`.
    pub port: Option<u16>,
    /// Whether the main port asks for a system administrator.
    pub require_admin: bool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics { enabled: true, path: "/metrics".into(), port: None, require_admin: true }
    }
}

impl Metrics {
    /// The address of the metrics port, if one is set: `http.addr`'s host with `port`.
    pub fn addr(&self, http_addr: &str) -> Option<String> {
        let port = self.port?;
        let host = http_addr.rsplit_once(':').map_or(http_addr, |(h, _)| h);
        Some(format!("{host}:{port}"))
    }

    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.path.starts_with('/') && self.path.len() > 1 && !self.path.contains(['{', '}', '*']),
            "metrics.path must be an absolute path such as /metrics, not {:?}",
            self.path
        );
        Ok(())
    }
}

/// The audit log (Harbor's keys of the same names).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Audit {
    /// Event types not recorded, as `/auditlog-exts/events` names them (`create_artifact`, ...).
    pub disabled_audit_log_event_types: Vec<String>,
    /// Pulls are not recorded.
    pub pull_audit_log_disable: bool,
    /// A syslog server that receives every record: `host:port` (TCP), or `tcp://`, `tls://`,
    /// `udp://` before it.
    pub audit_log_forward_endpoint: Option<String>,
    /// With a forward endpoint: records go there only, not into the database.
    pub skip_audit_log_database: bool,
    /// Records held while the syslog server is away; beyond, they are dropped and counted.
    pub forward_buffer_lines: usize,
    /// The CA certificates (PEM) that sign a `tls://` server's certificate; else the public roots.
    pub forward_ca_file: Option<PathBuf>,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            disabled_audit_log_event_types: Vec::new(),
            pull_audit_log_disable: false,
            audit_log_forward_endpoint: None,
            skip_audit_log_database: false,
            forward_buffer_lines: 10_000,
            forward_ca_file: None,
        }
    }
}

impl Audit {
    /// How the forward endpoint (whichever the settings name) is reached.
    pub fn forward_options(&self) -> anyhow::Result<berth_core::settings::ForwardOptions> {
        let ca_pem = match &self.forward_ca_file {
            Some(path) => {
                Some(std::fs::read(path).with_context(|| format!("reading audit.forward_ca_file {}", path.display()))?)
            }
            None => None,
        };
        Ok(berth_core::settings::ForwardOptions { buffer_lines: self.forward_buffer_lines, ca_pem })
    }
}

/// The corporate proxy for Berth's outbound HTTP clients (Harbor's `proxy` section): which
/// Harbor component each client stands for is `berth_outbound::Component`'s to say.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Proxy {
    /// For `http://` requests (`http://host:port`, with optional `user:password@`).
    pub http_proxy: Option<String>,
    /// For `https://` requests, through a CONNECT tunnel.
    pub https_proxy: Option<String>,
    /// Hosts reached directly, in `NO_PROXY`'s syntax (names, `.suffix`, addresses, CIDR
    /// ranges; comma-separated or a list). Loopback is always direct.
    #[serde(deserialize_with = "optional_addresses")]
    pub no_proxy: Option<String>,
    /// The components whose clients use the proxy (Harbor's `core`, `jobservice`,
    /// `registry`, `trivy`; a list or comma-separated); the others go direct.
    #[serde(deserialize_with = "proxy_components")]
    pub components: Vec<berth_outbound::Component>,
}

impl Default for Proxy {
    fn default() -> Self {
        Proxy {
            http_proxy: None,
            https_proxy: None,
            no_proxy: None,
            components: berth_outbound::Component::ALL.to_vec(),
        }
    }
}

impl Proxy {
    /// The settings, checked, with the standard variables (`HTTP_PROXY`, ...) filling what
    /// the configuration leaves unset.
    pub fn settings(&self) -> anyhow::Result<berth_outbound::ProxySettings> {
        let configured = berth_outbound::ProxySettings::new(
            self.http_proxy.as_deref(),
            self.https_proxy.as_deref(),
            self.no_proxy.as_deref(),
            self.components.iter().copied(),
        )?;
        Ok(configured.with_environment(|name| std::env::var(name).ok())?)
    }

    /// The route of `component`'s clients.
    pub fn route(&self, component: berth_outbound::Component) -> anyhow::Result<berth_outbound::Route> {
        Ok(self.settings()?.route(component))
    }
}

/// The vulnerability database's scheduled download (Harbor's Trivy adapter fetches its own
/// database every 12 hours): a `VULNDB_UPDATE` job on the job service, its client on the
/// `trivy` component's proxy route.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct VulnDb {
    /// Feeds to fetch, each in its upstream's layout, as `berth vulndb import` takes them: a
    /// `.zip` (osv.dev's `all.zip` of an ecosystem), a `.tar.gz`/`.tgz`, an OVAL `.xml` or
    /// `.xml.gz`, or one record file (Alpine's secdb `.json`). A list or comma-separated;
    /// empty (the default): nothing is downloaded.
    #[serde(deserialize_with = "string_list")]
    pub urls: Vec<String>,
    /// When they are fetched: Harbor's six-field cron (seconds first). A first fetch runs at
    /// start when no feed was yet imported from these URLs.
    pub update_cron: String,
    /// CA certificates (PEM) of an HTTPS mirror signed by an internal CA; else the public roots.
    pub ca_file: Option<PathBuf>,
    /// The longest one feed's download may take.
    pub timeout_seconds: u64,
}

impl Default for VulnDb {
    fn default() -> Self {
        VulnDb { urls: Vec::new(), update_cron: "0 0 */12 * * *".into(), ca_file: None, timeout_seconds: 1800 }
    }
}

fn string_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let joined = optional_addresses(d)?.unwrap_or_default();
    Ok(joined.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
}

fn optional_addresses<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "addresses")] String);
    Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
}

fn proxy_components<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<berth_outbound::Component>, D::Error> {
    use berth_outbound::Component;
    let joined = optional_addresses(d)?.unwrap_or_default();
    joined
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            Component::ALL.into_iter().find(|c| c.as_str() == name).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "proxy.components: unknown component {name:?}; Harbor's are core, jobservice, registry and trivy"
                ))
            })
        })
        .collect()
}

/// Housekeeping: the job service's `HOUSEKEEPING` job, fired once per cluster by a standing
/// schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Maintenance {
    /// How often it runs: a number of seconds that divides a minute, an hour or a day (the
    /// schedule is a cron, so that every replica fires it at the same times).
    pub interval_seconds: u64,
    /// Upload sessions untouched for longer are purged (Distribution's default: a week).
    pub upload_max_age_seconds: u64,
    /// Gone: housekeeping runs under the job service's lease (`jobs.lease_seconds`). Refused
    /// when set, so that a configuration that names it is not silently ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_seconds: Option<u64>,
}

impl Default for Maintenance {
    fn default() -> Self {
        Maintenance { interval_seconds: 3600, upload_max_age_seconds: 7 * 24 * 3600, lease_seconds: None }
    }
}

impl Maintenance {
    /// The schedule's cron (six fields, seconds first) for `interval_seconds`.
    pub fn cron(&self) -> anyhow::Result<String> {
        if self.lease_seconds.is_some() {
            anyhow::bail!("maintenance.lease_seconds is gone: housekeeping is a job, held under jobs.lease_seconds");
        }
        let n = self.interval_seconds;
        let divides = |unit: u64| n > 0 && unit.is_multiple_of(n);
        Ok(match n {
            _ if divides(60) => format!("*/{n} * * * * *"),
            _ if n.is_multiple_of(60) && divides(3600) => format!("0 */{} * * * *", n / 60),
            _ if n.is_multiple_of(3600) && divides(86_400) => format!("0 0 */{} * * *", n / 3600),
            _ => anyhow::bail!(
                "maintenance.interval_seconds must divide a minute, an hour or a day (1-60, 120, 300, ..., 3600, \
                 7200, ..., 86400), not {n}"
            ),
        })
    }

    pub fn settings(&self, jobs: &Jobs, gc: &Gc) -> berth_core::maintenance::MaintenanceSettings {
        use std::time::Duration;
        berth_core::maintenance::MaintenanceSettings {
            upload_max_age: Duration::from_secs(self.upload_max_age_seconds),
            history_count: jobs.history_count.max(1),
            history_counts: vec![(berth_gc::JOB_KIND.to_string(), gc.history_count.max(1))],
            history_max_age: Duration::from_secs(jobs.history_max_age_days.saturating_mul(86_400)),
            // Three missed heartbeats and a margin.
            pool_silence: Duration::from_secs(jobs.lease_seconds.max(1).saturating_mul(3).max(60)),
        }
    }
}

/// Garbage collection (Harbor's `GC_TIME_WINDOW_HOURS` and execution retention).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Gc {
    /// Content younger than this is never collected: the longest a push may take between
    /// uploading a blob and pushing the manifest that references it.
    pub time_window_hours: i64,
    /// Executions kept in the history (Harbor: 50); other jobs keep `jobs.history_count`.
    pub history_count: i64,
}

impl Default for Gc {
    fn default() -> Self {
        Gc { time_window_hours: berth_gc::DEFAULT_TIME_WINDOW_HOURS, history_count: 50 }
    }
}

/// The job service (GC now; retention, scans, replication to come).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Jobs {
    /// How long a replica's claim of a job lasts unrenewed (renewed every third of it): the
    /// longest a job waits for another replica after its runner dies.
    pub lease_seconds: u64,
    /// Runners on each replica: jobs one replica runs at once.
    pub runners: usize,
    /// Ended jobs kept per kind (collections keep `gc.history_count`).
    pub history_count: i64,
    /// Ended jobs older than this many days are deleted whatever their count.
    pub history_max_age_days: u64,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs { lease_seconds: 30, runners: 2, history_count: 50, history_max_age_days: 90 }
    }
}

impl Jobs {
    pub fn settings(&self) -> berth_jobs::JobSettings {
        berth_jobs::JobSettings {
            lease: std::time::Duration::from_secs(self.lease_seconds.max(1)),
            ..Default::default()
        }
    }
}

/// Checking passwords: where Argon2 runs, and how much may wait for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Login {
    /// Threads that hash passwords, each with 19 MiB of its own; 0: one per core.
    pub hash_workers: usize,
    /// Password checks that may wait beyond those running; more are refused with 429.
    pub hash_queue: usize,
    /// Failed logins for one account from one client that cost nothing.
    pub free_failures: u32,
    /// Failed logins from one client, for any accounts, that cost nothing.
    pub client_free_failures: u32,
    /// How long failures are remembered after the last one.
    pub failure_window_seconds: u64,
    /// The wait after the first failure past the free ones; each further one doubles it.
    pub first_delay_seconds: u64,
    /// The longest wait.
    pub max_delay_seconds: u64,
}

impl Default for Login {
    fn default() -> Self {
        let p = berth_core::throttle::ThrottlePolicy::default();
        Login {
            hash_workers: 0,
            hash_queue: berth_core::identity::DEFAULT_HASH_QUEUE,
            free_failures: p.free_failures,
            client_free_failures: p.client_free_failures,
            failure_window_seconds: p.window.as_secs(),
            first_delay_seconds: p.first_delay.as_secs(),
            max_delay_seconds: p.max_delay.as_secs(),
        }
    }
}

impl Login {
    pub fn throttle(&self) -> berth_core::throttle::ThrottlePolicy {
        use std::time::Duration;
        berth_core::throttle::ThrottlePolicy {
            free_failures: self.free_failures,
            client_free_failures: self.client_free_failures,
            window: Duration::from_secs(self.failure_window_seconds.max(1)),
            first_delay: Duration::from_secs(self.first_delay_seconds.max(1)),
            max_delay: Duration::from_secs(self.max_delay_seconds.max(self.first_delay_seconds).max(1)),
        }
    }

    pub fn password_workers(&self) -> anyhow::Result<berth_auth::hashing::PasswordWorkers> {
        let workers = if self.hash_workers == 0 {
            berth_auth::hashing::PasswordWorkers::per_core(self.hash_queue)
        } else {
            berth_auth::hashing::PasswordWorkers::new(self.hash_workers, self.hash_queue)
        };
        workers.map_err(|e| anyhow::anyhow!("login: {e}"))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Token {
    /// Lifetime of registry tokens in minutes (Harbor's `token_expiration`).
    pub expiration_minutes: u64,
    /// A PEM file with the P-256 key that signs registry tokens (a mounted secret shared by
    /// the replicas); without it the key is generated once (see `server::load_token_issuer`).
    pub signing_key_file: Option<PathBuf>,
}

impl Default for Token {
    fn default() -> Self {
        Token { expiration_minutes: 30, signing_key_file: None }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Http {
    /// `ADDR:PORT` to listen on; port 0 picks a free port.
    pub addr: String,
    /// Most `/v2` requests handled at once (beyond: 429 with Retry-After); 0 means no limit.
    pub max_concurrent_requests: usize,
    /// The longest a client may take to send a request's head (request line and headers).
    pub header_read_timeout_seconds: u64,
    /// The longest a request body may pause between bytes; the request then fails.
    pub body_read_timeout_seconds: u64,
    /// The longest a response may wait for a client that does not read it.
    pub write_timeout_seconds: u64,
    /// The longest a keep-alive connection may wait for its next request.
    pub idle_timeout_seconds: u64,
    /// Connections open at once (0: no limit); beyond, new ones are closed at once.
    pub max_connections: usize,
    /// Connections open at once from one address (0: no limit).
    pub max_connections_per_client: usize,
    /// Blob upload requests (PATCH and PUT with a body) one caller may have in flight at once
    /// (0: no limit); beyond, 429 with Retry-After.
    pub max_uploads_per_client: usize,
    /// At shutdown, how long requests in flight may take to finish before connections close.
    pub shutdown_timeout_seconds: u64,
    /// Proxies (addresses or CIDR networks) whose `X-Forwarded-For` or `Forwarded` header
    /// names the client; from anyone else those headers are ignored.
    pub trusted_proxies: Vec<String>,
}

impl Http {
    pub fn limits(&self) -> anyhow::Result<berth_api::ServerLimits> {
        use std::time::Duration;
        let secs = |s: u64| Duration::from_secs(s.max(1));
        Ok(berth_api::ServerLimits {
            trusted_proxies: berth_api::client::TrustedProxies::parse(&self.trusted_proxies)?,
            header_read_timeout: secs(self.header_read_timeout_seconds),
            body_read_timeout: secs(self.body_read_timeout_seconds),
            write_timeout: secs(self.write_timeout_seconds),
            idle_timeout: secs(self.idle_timeout_seconds),
            max_connections: self.max_connections,
            max_connections_per_client: self.max_connections_per_client,
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout_seconds),
        })
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Database {
    /// `embedded` (SQLite in the data directory) or `external` (PostgreSQL).
    #[serde(rename = "type")]
    pub kind: DatabaseKind,
    pub external: ExternalDatabase,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseKind {
    #[default]
    Embedded,
    External,
}

/// Harbor's `external_database.harbor` keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalDatabase {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: Option<String>,
    /// A file holding the password (as Kubernetes mounts secrets); trailing newline removed.
    pub password_file: Option<PathBuf>,
    pub database: String,
    /// `disable`, `require`, `verify-ca` or `verify-full`.
    pub sslmode: String,
    /// The CA bundle that `verify-ca` and `verify-full` check the server against.
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM) and its key, for a server that asks for one (internal TLS;
    /// PostgreSQL's `cert` authentication takes the user from the certificate's CN).
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub max_connections: u32,
}

impl Default for ExternalDatabase {
    fn default() -> Self {
        ExternalDatabase {
            host: "127.0.0.1".into(),
            port: 5432,
            username: "postgres".into(),
            password: None,
            password_file: None,
            database: "registry".into(),
            sslmode: "disable".into(),
            ca_file: None,
            cert_file: None,
            key_file: None,
            max_connections: 20,
        }
    }
}

impl ExternalDatabase {
    /// The connection URL, with user and password percent-encoded.
    pub fn url(&self) -> anyhow::Result<String> {
        use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
        if !["disable", "require", "verify-ca", "verify-full"].contains(&self.sslmode.as_str()) {
            anyhow::bail!(
                "database.external.sslmode must be disable, require, verify-ca or verify-full, not {:?}",
                self.sslmode
            );
        }
        let password =
            secret_value(self.password.as_deref(), self.password_file.as_deref(), "database.external.password_file")?;
        let user = utf8_percent_encode(&self.username, NON_ALPHANUMERIC);
        let auth = match password {
            Some(p) => format!("{user}:{}@", utf8_percent_encode(&p, NON_ALPHANUMERIC)),
            None => format!("{user}@"),
        };
        let database = utf8_percent_encode(&self.database, NON_ALPHANUMERIC);
        let mut url = format!("postgres://{auth}{}:{}/{database}?sslmode={}", self.host, self.port, self.sslmode);
        // Without a CA file, verification uses the public roots (webpki), as managed services
        // with publicly trusted certificates need.
        let path = |p: &Path| utf8_percent_encode(&p.to_string_lossy(), NON_ALPHANUMERIC).to_string();
        if let Some(ca) = &self.ca_file {
            url.push_str(&format!("&sslrootcert={}", path(ca)));
        }
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => url.push_str(&format!("&sslcert={}&sslkey={}", path(cert), path(key))),
            (None, None) => {}
            _ => anyhow::bail!("database.external.cert_file and key_file go together"),
        }
        Ok(url)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Redis {
    /// `none` (each replica keeps its own state) or `external`.
    #[serde(rename = "type")]
    pub kind: RedisKind,
    pub external: ExternalRedis,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisKind {
    #[default]
    None,
    External,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalRedis {
    /// `host:port`; with `sentinel_master_set`, the Sentinels' (a list, or comma-separated as
    /// Harbor's `addr`, which a configuration file may give instead: see `parse_yaml`).
    #[serde(deserialize_with = "addresses")]
    pub addrs: String,
    pub sentinel_master_set: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    pub tls: bool,
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM) and its key, for servers that ask for one (`tls-auth-clients`).
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub db: u32,
}

impl Default for ExternalRedis {
    fn default() -> Self {
        ExternalRedis {
            addrs: "127.0.0.1:6379".into(),
            sentinel_master_set: None,
            username: None,
            password: None,
            password_file: None,
            tls: false,
            ca_file: None,
            cert_file: None,
            key_file: None,
            db: 0,
        }
    }
}

impl ExternalRedis {
    /// A client for the configured Redis: one server, or the master the Sentinels name.
    pub fn connect(&self) -> anyhow::Result<berth_core::shared::SharedState> {
        use berth_core::shared::{NodeAuth, SharedState, Tls};
        let read = |path: &Path, key: &str| {
            std::fs::read(path).with_context(|| format!("reading redis.external.{key} {}", path.display()))
        };
        let ca = match &self.ca_file {
            Some(path) if self.tls => Some(read(path, "ca_file")?),
            _ => None,
        };
        let client = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) if self.tls => Some((read(cert, "cert_file")?, read(key, "key_file")?)),
            (None, None) => None,
            (Some(_), Some(_)) => anyhow::bail!("redis.external.cert_file needs redis.external.tls"),
            _ => anyhow::bail!("redis.external.cert_file and key_file go together"),
        };
        match &self.sentinel_master_set {
            None if self.tls => {
                SharedState::connect_tls(&self.url()?, Tls { ca, client }, "berth:").map_err(anyhow::Error::msg)
            }
            None => SharedState::connect(&self.url()?).map_err(anyhow::Error::msg),
            Some(master) => {
                let sentinels: Vec<String> =
                    self.addrs.split(',').map(str::trim).filter(|a| !a.is_empty()).map(String::from).collect();
                let auth = NodeAuth {
                    username: self.username.clone(),
                    password: secret_value(
                        self.password.as_deref(),
                        self.password_file.as_deref(),
                        "redis.external.password_file",
                    )?,
                    db: i64::from(self.db),
                };
                let tls = self.tls.then_some(Tls { ca, client });
                SharedState::connect_sentinel(&sentinels, master, auth, tls, "berth:").map_err(anyhow::Error::msg)
            }
        }
    }

    /// The connection URL of a single server, with user and password percent-encoded.
    pub fn url(&self) -> anyhow::Result<String> {
        use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
        if self.sentinel_master_set.is_some() || self.addrs.contains(',') {
            anyhow::bail!("redis.external: several addresses need sentinel_master_set (they are Sentinels)");
        }
        let password =
            secret_value(self.password.as_deref(), self.password_file.as_deref(), "redis.external.password_file")?;
        let auth = match (&self.username, password) {
            (None, None) => String::new(),
            (user, password) => format!(
                "{}:{}@",
                utf8_percent_encode(user.as_deref().unwrap_or(""), NON_ALPHANUMERIC),
                utf8_percent_encode(password.as_deref().unwrap_or(""), NON_ALPHANUMERIC)
            ),
        };
        let scheme = if self.tls { "rediss" } else { "redis" };
        Ok(format!("{scheme}://{auth}{}/{}", self.addrs.trim(), self.db))
    }
}

/// Addresses as one comma-separated string, from either that (Harbor's `addr`) or a list.
fn addresses<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Addresses {
        One(String),
        List(Vec<String>),
    }
    Ok(match Addresses::deserialize(d)? {
        Addresses::One(s) => s,
        Addresses::List(list) => list.iter().map(|a| a.trim()).collect::<Vec<_>>().join(","),
    })
}

/// A secret given in the configuration or in a file it names (trailing newline removed);
/// `file_key` names the file's key in errors.
fn secret_value(value: Option<&str>, file: Option<&Path>, file_key: &str) -> anyhow::Result<Option<String>> {
    match (value, file) {
        (Some(v), _) => Ok(Some(v.to_string())),
        (None, Some(path)) => Ok(Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading {file_key} {}", path.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        )),
        (None, None) => Ok(None),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Storage {
    /// `filesystem` (the default), `s3`, `gcs` or `azure`; `swift` and `oss` in builds with
    /// the feature `opendal`.
    #[serde(rename = "type")]
    pub kind: StorageKind,
    pub filesystem: FilesystemStorage,
    pub s3: S3Storage,
    pub gcs: GcsStorage,
    pub azure: AzureStorage,
    pub swift: SwiftStorage,
    pub oss: OssStorage,
    /// Blob GETs answer 307 with a presigned URL of the object store, so that blob bytes do
    /// not pass through the replicas (ignored for the filesystem).
    pub redirect: bool,
    /// How long a presigned URL stays valid.
    pub redirect_seconds: u64,
    /// CA certificates (PEM) the object store's client trusts besides the public roots
    /// (internal TLS; Harbor's `caBundleSecretName`).
    pub ca_file: Option<PathBuf>,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            kind: StorageKind::default(),
            filesystem: FilesystemStorage::default(),
            s3: S3Storage::default(),
            gcs: GcsStorage::default(),
            azure: AzureStorage::default(),
            swift: SwiftStorage::default(),
            oss: OssStorage::default(),
            redirect: false,
            redirect_seconds: 20 * 60,
            ca_file: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    #[default]
    Filesystem,
    S3,
    Gcs,
    Azure,
    Swift,
    Oss,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FilesystemStorage {
    /// Blob root; defaults to the data directory. A shared volume (NFS, ...) serves several
    /// replicas.
    pub root: Option<PathBuf>,
}

/// Amazon S3 or an S3-compatible server.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct S3Storage {
    pub bucket: String,
    pub region: Option<String>,
    /// An S3-compatible server's URL (MinIO, Ceph, ...).
    pub endpoint: Option<String>,
    /// Bucket in the path rather than in the host name (most S3-compatible servers).
    pub path_style: bool,
    /// Without keys, the environment's credentials (AWS_* variables, instance profile, ...).
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub secret_key_file: Option<PathBuf>,
    /// A key prefix for everything Berth stores.
    pub root: String,
}

/// Google Cloud Storage.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GcsStorage {
    pub bucket: String,
    /// A service account key (JSON); without it, the environment's credentials.
    pub credentials_file: Option<PathBuf>,
    pub root: String,
}

/// Azure Blob Storage.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AzureStorage {
    pub account_name: String,
    pub container: String,
    pub account_key: Option<String>,
    pub account_key_file: Option<PathBuf>,
    /// A custom endpoint (Azurite, sovereign clouds).
    pub endpoint: Option<String>,
    pub root: String,
}

/// OpenStack Swift (builds with the feature `opendal`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SwiftStorage {
    /// The account's storage URL.
    pub endpoint: String,
    pub container: String,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    /// The account's temporary-URL key, for `storage.redirect`.
    pub temp_url_key: Option<String>,
    pub root: String,
}

/// Alibaba Cloud OSS (builds with the feature `opendal`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OssStorage {
    pub bucket: String,
    pub endpoint: String,
    pub access_key_id: Option<String>,
    pub access_key_secret: Option<String>,
    pub access_key_secret_file: Option<PathBuf>,
    pub root: String,
}

impl Storage {
    /// Opens the configured blob store; `data_dir` is the filesystem's default root, `proxy`
    /// the route of an object store's client.
    pub fn open(
        &self,
        data_dir: &Path,
        proxy: &berth_outbound::Route,
    ) -> anyhow::Result<std::sync::Arc<dyn berth_store::BlobStore>> {
        use berth_store::{AzureOptions, CloudStore, FsStore, GcsOptions, OssOptions, S3Options, SwiftOptions};
        fn required(value: &str, key: &str) -> anyhow::Result<String> {
            anyhow::ensure!(!value.trim().is_empty(), "{key} is required");
            Ok(value.to_string())
        }
        let ca_pem = match &self.ca_file {
            Some(path) => {
                Some(std::fs::read(path).with_context(|| format!("reading storage.ca_file {}", path.display()))?)
            }
            None => None,
        };
        Ok(match self.kind {
            StorageKind::Filesystem => {
                let root = self.filesystem.root.clone().unwrap_or_else(|| data_dir.to_path_buf());
                std::sync::Arc::new(
                    FsStore::open(&root).with_context(|| format!("opening blob storage at {}", root.display()))?,
                )
            }
            StorageKind::S3 => {
                let s3 = &self.s3;
                std::sync::Arc::new(CloudStore::s3(&S3Options {
                    bucket: required(&s3.bucket, "storage.s3.bucket")?,
                    region: s3.region.clone(),
                    endpoint: s3.endpoint.clone(),
                    path_style: s3.path_style,
                    access_key: s3.access_key.clone(),
                    secret_key: secret_value(
                        s3.secret_key.as_deref(),
                        s3.secret_key_file.as_deref(),
                        "storage.s3.secret_key_file",
                    )?,
                    session_token: None,
                    proxy: proxy.clone(),
                    ca_pem: ca_pem.clone(),
                    root: s3.root.clone(),
                })?)
            }
            StorageKind::Gcs => std::sync::Arc::new(CloudStore::gcs(&GcsOptions {
                bucket: required(&self.gcs.bucket, "storage.gcs.bucket")?,
                credentials_file: self.gcs.credentials_file.as_ref().map(|p| p.display().to_string()),
                root: self.gcs.root.clone(),
                proxy: proxy.clone(),
                ca_pem: ca_pem.clone(),
            })?),
            StorageKind::Azure => {
                let azure = &self.azure;
                std::sync::Arc::new(CloudStore::azure(&AzureOptions {
                    account_name: required(&azure.account_name, "storage.azure.account_name")?,
                    container: required(&azure.container, "storage.azure.container")?,
                    account_key: secret_value(
                        azure.account_key.as_deref(),
                        azure.account_key_file.as_deref(),
                        "storage.azure.account_key_file",
                    )?,
                    endpoint: azure.endpoint.clone(),
                    root: azure.root.clone(),
                    proxy: proxy.clone(),
                    ca_pem: ca_pem.clone(),
                })?)
            }
            StorageKind::Swift => {
                let swift = &self.swift;
                berth_store::open_swift(&SwiftOptions {
                    endpoint: required(&swift.endpoint, "storage.swift.endpoint")?,
                    container: required(&swift.container, "storage.swift.container")?,
                    token: secret_value(
                        swift.token.as_deref(),
                        swift.token_file.as_deref(),
                        "storage.swift.token_file",
                    )?,
                    temp_url_key: swift.temp_url_key.clone(),
                    root: swift.root.clone(),
                    proxy: proxy.clone(),
                    ca_pem: ca_pem.clone(),
                })?
            }
            StorageKind::Oss => {
                let oss = &self.oss;
                berth_store::open_oss(&OssOptions {
                    bucket: required(&oss.bucket, "storage.oss.bucket")?,
                    endpoint: required(&oss.endpoint, "storage.oss.endpoint")?,
                    access_key_id: oss.access_key_id.clone(),
                    access_key_secret: secret_value(
                        oss.access_key_secret.as_deref(),
                        oss.access_key_secret_file.as_deref(),
                        "storage.oss.access_key_secret_file",
                    )?,
                    root: oss.root.clone(),
                    proxy: proxy.clone(),
                    ca_pem: ca_pem.clone(),
                })?
            }
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Log {
    /// A `tracing` filter: `info`, or per module as `info,berth_api=debug`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
    /// A syslog server that receives every line too: `tcp://`, `udp://` or `tls://` `host:port`.
    pub external_endpoint: Option<String>,
    /// The CA certificates (PEM) that sign a `tls://` server's certificate; else the public roots.
    pub external_ca_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            external_url: None,
            data_dir: PathBuf::from("./berth-data"),
            admin_password: None,
            admin_password_file: None,
            secret_key_file: None,
            http: Http::default(),
            database: Database::default(),
            redis: Redis::default(),
            storage: Storage::default(),
            log: Log::default(),
            token: Token::default(),
            maintenance: Maintenance::default(),
            gc: Gc::default(),
            jobs: Jobs::default(),
            login: Login::default(),
            audit: Audit::default(),
            metrics: Metrics::default(),
            trace: Trace::default(),
            settings: SettingsFile::default(),
            tls: Tls::default(),
            proxy: Proxy::default(),
            vulndb: VulnDb::default(),
        }
    }
}

impl Default for Http {
    fn default() -> Self {
        let limits = berth_api::ServerLimits::default();
        Http {
            addr: "127.0.0.1:5000".into(),
            max_concurrent_requests: 0,
            header_read_timeout_seconds: limits.header_read_timeout.as_secs(),
            body_read_timeout_seconds: limits.body_read_timeout.as_secs(),
            write_timeout_seconds: limits.write_timeout.as_secs(),
            idle_timeout_seconds: limits.idle_timeout.as_secs(),
            max_connections: limits.max_connections,
            max_connections_per_client: limits.max_connections_per_client,
            max_uploads_per_client: 64,
            shutdown_timeout_seconds: limits.shutdown_timeout.as_secs(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log { level: "info".into(), format: "text".into(), external_endpoint: None, external_ca_file: None }
    }
}

/// Values given on the command line, which win over everything else.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpOverride>,
}

#[derive(Debug, Serialize)]
pub struct HttpOverride {
    pub addr: String,
}

/// The YAML of a configuration file as a value figment can merge. serde-saphyr rather than
/// figment's YAML provider, which is built on the deprecated serde_yaml.
fn parse_yaml(text: &str) -> anyhow::Result<serde_json::Value> {
    let mut value: serde_json::Value = serde_saphyr::from_str(text)?;
    // Harbor's `redis.external.addr` is `addrs` here. Renamed before the merge: as a serde
    // alias it would meet the default's `addrs` as a duplicate field.
    if let Some(external) = value.pointer_mut("/redis/external").and_then(|v| v.as_object_mut())
        && let Some(addr) = external.remove("addr")
    {
        if external.contains_key("addrs") {
            anyhow::bail!("redis.external: give addrs or Harbor's addr, not both");
        }
        external.insert("addrs".into(), addr);
    }
    let known = serde_json::to_value(Config::default())?;
    let mut unknown = Vec::new();
    unknown_keys(&value, &known, "", &mut unknown);
    if !unknown.is_empty() {
        anyhow::bail!(
            "unknown configuration keys: {} (docs/configuration.md lists every key; a key Berth does not have \
             would otherwise be ignored in silence)",
            unknown.join(", ")
        );
    }
    Ok(value)
}

/// Sections whose keys are not Berth's fields: Harbor's run-time setting names (checked by
/// `starting_settings`) and a trace's free resource attributes.
const FREE_FORM: &[&str] = &["settings", "trace.attributes"];
/// Keys the defaults leave out but that are refused later with their own message.
const REFUSED_LATER: &[&str] = &["maintenance.lease_seconds"];

/// The key paths of `written` (a configuration file) that `known` (the defaults) does not have.
fn unknown_keys(written: &serde_json::Value, known: &serde_json::Value, at: &str, out: &mut Vec<String>) {
    let serde_json::Value::Object(written) = written else { return };
    for (key, value) in written {
        let path = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
        if FREE_FORM.contains(&path.as_str()) || REFUSED_LATER.contains(&path.as_str()) {
            continue;
        }
        match known.get(key) {
            Some(inner) if inner.is_object() => unknown_keys(value, inner, &path, out),
            Some(_) => {}
            None => out.push(path),
        }
    }
}

impl Config {
    pub fn load(file: Option<&Path>, overrides: Overrides) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading configuration file {}", path.display()))?;
            let value = parse_yaml(&text).with_context(|| format!("parsing configuration file {}", path.display()))?;
            figment = figment.merge(Serialized::defaults(value));
        }
        figment = figment.merge(Env::prefixed("BERTH_").split("__")).merge(Serialized::defaults(overrides));
        figment.extract().context("invalid configuration")
    }

    /// The configured blob store, its client on the `registry` component's proxy route.
    pub fn blob_store(&self) -> anyhow::Result<std::sync::Arc<dyn berth_store::BlobStore>> {
        let route = self.proxy.route(berth_outbound::Component::Registry)?;
        self.storage.open(&self.data_dir, &route)
    }

    /// A configuration from defaults and `file` only, without the environment (which
    /// describes the running installation, not this one).
    pub fn load_file_only(file: &Path) -> anyhow::Result<Config> {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading configuration file {}", file.display()))?;
        Config::from_yaml(&text).with_context(|| format!("configuration file {}", file.display()))
    }

    /// A configuration from defaults and the text of a configuration file only.
    pub fn from_yaml(text: &str) -> anyhow::Result<Config> {
        let value = parse_yaml(text).context("parsing the configuration")?;
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Serialized::defaults(value))
            .extract()
            .context("invalid configuration")
    }

    /// The first administrator's password, from the value or the file (trailing newline
    /// removed), if either is set.
    pub fn admin_password(&self) -> anyhow::Result<Option<String>> {
        if let Some(p) = &self.admin_password {
            return Ok(Some(p.clone()));
        }
        match &self.admin_password_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading admin_password_file {}", path.display()))?;
                Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()))
            }
            None => Ok(None),
        }
    }

    pub fn blob_root(&self) -> PathBuf {
        self.storage.filesystem.root.clone().unwrap_or_else(|| self.data_dir.clone())
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type
mod tests {
    use super::*;

    #[test]
    fn the_housekeeping_interval_becomes_a_cron_or_is_refused() {
        let cron = |n: u64| Maintenance { interval_seconds: n, ..Default::default() }.cron();
        for (n, expected) in [
            (1, "*/1 * * * * *"),
            (30, "*/30 * * * * *"),
            (60, "*/60 * * * * *"),
            (300, "0 */5 * * * *"),
            (3600, "0 */60 * * * *"),
            (7200, "0 0 */2 * * *"),
            (86_400, "0 0 */24 * * *"),
        ] {
            assert_eq!(cron(n).unwrap(), expected, "{n}");
            // Every one fires every n seconds.
            let c = berth_jobs::schedule::Cron::parse(expected).unwrap();
            let start = 1_700_006_400; // a midnight, UTC
            assert_eq!(c.next_after(start).unwrap() - start, n as i64, "{expected}");
        }
        for n in [0, 7, 90, 5000, 100_000] {
            assert!(cron(n).is_err(), "{n}");
        }
        let gone = Maintenance { lease_seconds: Some(30), ..Default::default() };
        assert!(gone.cron().unwrap_err().to_string().contains("jobs.lease_seconds"));
    }

    #[test]
    fn file_then_environment_then_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("berth.yml", "http:\n  addr: 0.0.0.0:9000\nlog:\n  level: debug\ndata_dir: /from-file\n")?;
            jail.set_env("BERTH_LOG__LEVEL", "warn");
            let cfg = Config::load(Some(Path::new("berth.yml")), Overrides::default()).unwrap();
            assert_eq!(cfg.http.addr, "0.0.0.0:9000");
            assert_eq!(cfg.log.level, "warn");
            assert_eq!(cfg.data_dir, PathBuf::from("/from-file"));
            let flags =
                Overrides { data_dir: Some("/flag".into()), http: Some(HttpOverride { addr: "127.0.0.1:0".into() }) };
            jail.set_env("BERTH_HTTP__ADDR", "1.2.3.4:1");
            let cfg = Config::load(Some(Path::new("berth.yml")), flags).unwrap();
            assert_eq!(cfg.http.addr, "127.0.0.1:0");
            assert_eq!(cfg.data_dir, PathBuf::from("/flag"));
            Ok(())
        });
    }

    #[test]
    fn an_external_database_from_keys_and_a_password_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("pw", "p@ss/word\n")?;
            jail.create_file(
                "berth.yml",
                "database:\n  type: external\n  external:\n    host: db.internal\n    username: harbor\n    password_file: pw\n",
            )?;
            jail.set_env("BERTH_DATABASE__EXTERNAL__PORT", "6432");
            let cfg = Config::load(Some(Path::new("berth.yml")), Overrides::default()).unwrap();
            assert_eq!(cfg.database.kind, DatabaseKind::External);
            assert_eq!(
                cfg.database.external.url().unwrap(),
                "postgres://harbor:p%40ss%2Fword@db.internal:6432/registry?sslmode=disable"
            );
            jail.set_env("BERTH_DATABASE__EXTERNAL__SSLMODE", "sometimes");
            let cfg = Config::load(Some(Path::new("berth.yml")), Overrides::default()).unwrap();
            assert!(cfg.database.external.url().is_err());
            Ok(())
        });
    }

    #[test]
    fn redis_from_keys() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BERTH_REDIS__TYPE", "external");
            jail.set_env("BERTH_REDIS__EXTERNAL__ADDRS", "cache:6380");
            jail.set_env("BERTH_REDIS__EXTERNAL__PASSWORD", "s3cr:t");
            jail.set_env("BERTH_REDIS__EXTERNAL__DB", "2");
            let cfg = Config::load(None, Overrides::default()).unwrap();
            assert_eq!(cfg.redis.kind, RedisKind::External);
            assert_eq!(cfg.redis.external.url().unwrap(), "redis://:s3cr%3At@cache:6380/2");
            jail.set_env("BERTH_REDIS__EXTERNAL__ADDRS", "s1:26379,s2:26379");
            let cfg = Config::load(None, Overrides::default()).unwrap();
            assert!(cfg.redis.external.url().is_err(), "several addresses without a master set are refused");
            jail.set_env("BERTH_REDIS__EXTERNAL__SENTINEL_MASTER_SET", "mymaster");
            let cfg = Config::load(None, Overrides::default()).unwrap();
            assert!(cfg.redis.external.connect().is_ok(), "through the Sentinels");
            Ok(())
        });
    }

    #[test]
    fn redis_addresses_as_a_list_or_as_harbors_addr() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "list.yml",
                "redis:\n  type: external\n  external:\n    addrs: [\"s1:26379\", \" s2:26379\"]\n    sentinel_master_set: mymaster\n",
            )?;
            let cfg = Config::load(Some(Path::new("list.yml")), Overrides::default()).unwrap();
            assert_eq!(cfg.redis.external.addrs, "s1:26379,s2:26379");
            jail.create_file("addr.yml", "redis:\n  type: external\n  external:\n    addr: cache:6380\n")?;
            let cfg = Config::load(Some(Path::new("addr.yml")), Overrides::default()).unwrap();
            assert_eq!(cfg.redis.external.url().unwrap(), "redis://cache:6380/0");
            jail.create_file("both.yml", "redis:\n  external:\n    addr: a:1\n    addrs: b:2\n")?;
            assert!(Config::load(Some(Path::new("both.yml")), Overrides::default()).is_err(), "one or the other");
            jail.create_file("bad.yml", "redis:\n  external:\n    addrs: 6379\n")?;
            assert!(Config::load(Some(Path::new("bad.yml")), Overrides::default()).is_err(), "a number is refused");
            Ok(())
        });
    }

    #[test]
    fn harbors_proxy_section_and_the_feeds() {
        use berth_outbound::Component;
        figment::Jail::expect_with(|jail| {
            // Harbor's installer template: blank values, the component list.
            jail.create_file(
                "harbor.yml",
                "proxy:\n  http_proxy:\n  https_proxy:\n  no_proxy:\n  components:\n    - core\n    - jobservice\n    \
                 - registry\n    - trivy\n",
            )?;
            let cfg = Config::load(Some(Path::new("harbor.yml")), Overrides::default()).unwrap();
            assert_eq!(cfg.proxy.components, Component::ALL.to_vec());
            jail.create_file(
                "set.yml",
                "proxy:\n  http_proxy: http://proxy.corp:3128\n  no_proxy: [\".corp\", \"10.0.0.0/8\"]\n  \
                 components: [trivy]\nvulndb:\n  urls: [\"https://a/all.zip\", \"https://b/main.json\"]\n",
            )?;
            let cfg = Config::load(Some(Path::new("set.yml")), Overrides::default()).unwrap();
            assert_eq!(cfg.proxy.no_proxy.as_deref(), Some(".corp,10.0.0.0/8"));
            assert_eq!(cfg.vulndb.urls, ["https://a/all.zip", "https://b/main.json"]);
            let trivy = cfg.proxy.route(Component::Trivy).unwrap();
            assert_eq!(trivy.proxy_for("http"), Some("http://proxy.corp:3128"));
            assert_eq!(cfg.proxy.route(Component::Registry).unwrap(), berth_outbound::Route::direct());
            // From the environment, comma-separated.
            jail.set_env("BERTH_PROXY__COMPONENTS", "registry, core");
            let cfg = Config::load(Some(Path::new("set.yml")), Overrides::default()).unwrap();
            assert_eq!(cfg.proxy.components, [Component::Registry, Component::Core]);
            jail.set_env("BERTH_PROXY__COMPONENTS", "registry,portal");
            let err = format!("{:#}", Config::load(None, Overrides::default()).unwrap_err());
            assert!(err.contains("unknown component \"portal\""), "{err}");
            jail.set_env("BERTH_PROXY__COMPONENTS", "trivy");
            jail.set_env("BERTH_PROXY__HTTP_PROXY", "proxy.corp:3128");
            let cfg = Config::load(None, Overrides::default()).unwrap();
            let err = cfg.proxy.settings().unwrap_err().to_string();
            assert!(err.contains("proxy.http_proxy"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused_by_their_path() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "typo.yml",
                "storge:\n  type: s3\nhttp:\n  adress: 0.0.0.0:5000\ntrace:\n  attributes:\n    team: x\n",
            )?;
            let err = format!("{:#}", Config::load(Some(Path::new("typo.yml")), Overrides::default()).unwrap_err());
            assert!(err.contains("unknown configuration keys: http.adress, storge"), "{err}");
            jail.create_file("free.yml", "trace:\n  attributes:\n    team: x\nsettings:\n  read_only: true\n")?;
            assert!(Config::load(Some(Path::new("free.yml")), Overrides::default()).is_ok());
            // The environment is not checked: it holds other programs' BERTH_ variables too.
            jail.set_env("BERTH_SOMETHING_ELSE", "x");
            assert!(Config::load(None, Overrides::default()).is_ok());
            Ok(())
        });
    }

    #[test]
    fn defaults_need_no_file() {
        figment::Jail::expect_with(|_| {
            let cfg = Config::load(None, Overrides::default()).unwrap();
            assert_eq!(cfg.http.addr, "127.0.0.1:5000");
            assert_eq!(cfg.blob_root(), PathBuf::from("./berth-data"));
            Ok(())
        });
    }

    #[test]
    fn object_storage_from_file_and_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "berth.yml",
                "storage:\n  type: s3\n  redirect: true\n  s3:\n    bucket: registry\n    endpoint: http://minio:9000\n    \
                 path_style: true\n    access_key: ak\n    secret_key_file: sk.txt\n",
            )?;
            jail.create_file("sk.txt", "secret\n")?;
            jail.set_env("BERTH_STORAGE__S3__ROOT", "berth");
            let cfg = Config::load(Some(Path::new("berth.yml")), Overrides::default()).unwrap();
            assert_eq!(cfg.storage.kind, StorageKind::S3);
            assert!(cfg.storage.redirect);
            assert_eq!(cfg.storage.redirect_seconds, 1200);
            assert_eq!((cfg.storage.s3.bucket.as_str(), cfg.storage.s3.root.as_str()), ("registry", "berth"));
            let store = cfg.storage.open(Path::new("unused"), &Default::default()).unwrap();
            assert_eq!(store.provider_name(), "s3");

            jail.set_env("BERTH_STORAGE__S3__BUCKET", " ");
            let cfg = Config::load(Some(Path::new("berth.yml")), Overrides::default()).unwrap();
            let refused = cfg.storage.open(Path::new("unused"), &Default::default()).err().unwrap().to_string();
            assert!(refused.contains("storage.s3.bucket"), "{refused}");
            jail.set_env("BERTH_STORAGE__TYPE", "azure");
            jail.set_env("BERTH_STORAGE__AZURE__ACCOUNT_NAME", "acct");
            let cfg = Config::load(Some(Path::new("berth.yml")), Overrides::default()).unwrap();
            let refused = cfg.storage.open(Path::new("unused"), &Default::default()).err().unwrap().to_string();
            assert!(refused.contains("storage.azure.container"), "{refused}");
            jail.set_env("BERTH_STORAGE__TYPE", "oss");
            jail.set_env("BERTH_STORAGE__OSS__BUCKET", "b");
            jail.set_env("BERTH_STORAGE__OSS__ENDPOINT", "https://oss-cn-hangzhou.aliyuncs.com");
            let cfg = Config::load(Some(Path::new("berth.yml")), Overrides::default()).unwrap();
            match cfg.storage.open(Path::new("unused"), &Default::default()) {
                Ok(store) => assert_eq!(store.provider_name(), "oss"),
                Err(e) => assert!(e.to_string().contains("feature `opendal`"), "{e}"),
            }
            jail.set_env("BERTH_STORAGE__TYPE", "floppy");
            assert!(Config::load(Some(Path::new("berth.yml")), Overrides::default()).is_err());
            Ok(())
        });
    }
}
