//! `berth serve`: opens the data directory, binds, serves, and shuts down gracefully.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use berth_core::Registry;
use berth_core::identity::Bootstrap;
use berth_db::Db;
use tracing_subscriber::EnvFilter;

use berth::config::{Config, DatabaseKind, Log, RedisKind, Trace};

/// Version of the data directory's layout (files beside the database). Bumped, with a
/// migration, whenever the layout changes.
const DATA_LAYOUT_VERSION: u32 = 1;
const LAYOUT_FILE: &str = "berth-layout-version";

/// Logs to standard output and, with `log.external_endpoint`, to a syslog server too (one
/// RFC 5424 message per line); with `trace.enabled`, spans go to an OTLP collector (the
/// provider returned is to be shut down at exit, which sends what is batched). Must run inside
/// the Tokio runtime.
pub fn init_logging(
    log: &Log,
    trace: &Trace,
    proxy: &berth_outbound::Route,
) -> anyhow::Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // RUST_LOG, when set, wins over log.level (the habit of every Rust service).
    let level = std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| log.level.clone());
    let filter = EnvFilter::try_new(&level).with_context(|| format!("invalid log level {level:?}"))?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let json = match log.format.as_str() {
        "json" => true,
        "text" => false,
        other => anyhow::bail!("log.format must be text or json, not {other:?}"),
    };
    let stdout = tracing_subscriber::fmt::layer().with_target(true).with_ansi(ansi);
    let stdout = if json { stdout.json().boxed() } else { stdout.boxed() };
    let syslog = match &log.external_endpoint {
        Some(endpoint) => {
            let endpoint = berth_core::syslog::Endpoint::parse(endpoint)
                .map_err(|e| anyhow::anyhow!("log.external_endpoint: {e}"))?;
            let ca = match &log.external_ca_file {
                Some(p) => {
                    Some(std::fs::read(p).with_context(|| format!("reading log.external_ca_file {}", p.display()))?)
                }
                None => None,
            };
            let forwarder = berth_core::syslog::Forwarder::start(endpoint, 10_000, ca, Arc::new(syslog_log::Unmetered))
                .map_err(|e| anyhow::anyhow!("log.external_endpoint: {e}"))?;
            let layer = tracing_subscriber::fmt::layer()
                .with_target(true)
                .with_ansi(false)
                .without_time()
                .with_writer(syslog_log::SyslogWriter(forwarder));
            Some(if json { layer.json().boxed() } else { layer.boxed() })
        }
        None => None,
    };
    let provider = trace.enabled.then(|| tracer_provider(trace, proxy)).transpose()?;
    // Spans are info (requests, database and storage calls): traces keep them whatever
    // log.level says of the lines.
    let otel = provider.as_ref().map(|p| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("berth"))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    tracing_subscriber::registry().with(stdout.and_then(syslog).with_filter(filter)).with(otel).init();
    Ok(provider)
}

fn tracer_provider(
    trace: &Trace,
    proxy: &berth_outbound::Route,
) -> anyhow::Result<opentelemetry_sdk::trace::SdkTracerProvider> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    use opentelemetry_sdk::trace::Sampler;
    anyhow::ensure!(
        (0.0..=1.0).contains(&trace.sample_rate),
        "trace.sample_rate must be between 0 and 1, not {}",
        trace.sample_rate
    );
    let timeout = std::time::Duration::from_secs(trace.otel.timeout_seconds.max(1));
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(trace.url())
        .with_timeout(timeout)
        .with_headers(Default::default());
    let roots = match &trace.otel.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).with_context(|| format!("reading trace.otel.ca_file {}", path.display()))?;
            reqwest::Certificate::from_pem_bundle(&pem).context("trace.otel.ca_file")?
        }
        None => Vec::new(),
    };
    // The exporter's client is ours, not its default, so that it takes the internal-TLS CA and
    // the `core` component's proxy route (and never the environment's proxy on its own).
    let proxies = proxy.reqwest_proxies()?;
    // Made on a thread of its own, as the exporter makes its default one: reqwest's blocking
    // client runs a runtime of its own, which may not start inside Berth's.
    let client = std::thread::spawn(move || {
        let mut builder = reqwest::blocking::Client::builder().timeout(timeout).no_proxy();
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
        for proxy in proxies {
            builder = builder.proxy(proxy);
        }
        builder.build()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("trace.otel: making the exporter's client panicked"))?
    .context("trace.otel: the exporter's client")?;
    exporter = exporter.with_http_client(client);
    let exporter = exporter.build().context("trace.otel: the OTLP exporter")?;
    let mut attributes = vec![opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))];
    if !trace.namespace.is_empty() {
        attributes.push(opentelemetry::KeyValue::new("service.namespace", trace.namespace.clone()));
    }
    for (k, v) in &trace.attributes {
        attributes.push(opentelemetry::KeyValue::new(k.clone(), v.clone()));
    }
    let resource =
        opentelemetry_sdk::Resource::builder().with_service_name("berth").with_attributes(attributes).build();
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(trace.sample_rate))))
        .with_resource(resource)
        .build())
}

/// Log lines as syslog messages: `tracing`'s formatter writes each event in one go into a
/// writer made for it, which sends the line when dropped.
mod syslog_log {
    use berth_core::syslog::{ForwardStats, Forwarder, Severity, format_rfc5424};

    pub struct Unmetered;

    impl ForwardStats for Unmetered {
        fn queued(&self, _: usize) {}
        fn sent(&self) {}
        fn dropped(&self) {}
    }

    pub struct SyslogWriter(pub Forwarder);

    pub struct SyslogLine<'a> {
        forwarder: &'a Forwarder,
        severity: Severity,
        line: Vec<u8>,
    }

    impl std::io::Write for SyslogLine<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.line.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Drop for SyslogLine<'_> {
        fn drop(&mut self) {
            let text = String::from_utf8_lossy(&self.line);
            let text = text.trim_end();
            if !text.is_empty() {
                self.forwarder.send(format_rfc5424(self.severity, "berth", "-", "", text));
            }
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SyslogWriter {
        type Writer = SyslogLine<'a>;

        fn make_writer(&'a self) -> SyslogLine<'a> {
            SyslogLine { forwarder: &self.0, severity: Severity::Info, line: Vec::new() }
        }

        fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> SyslogLine<'a> {
            let severity = match *meta.level() {
                tracing::Level::ERROR => Severity::Error,
                tracing::Level::WARN => Severity::Warning,
                tracing::Level::INFO => Severity::Info,
                _ => Severity::Debug,
            };
            SyslogLine { forwarder: &self.0, severity, line: Vec::new() }
        }
    }
}

/// The `VULNDB_UPDATE` worker: registered whatever the configuration, so that a job queued
/// before a restart with fewer feeds still ends.
fn feed_downloader(config: &Config, db: Db) -> anyhow::Result<berth_scan::download::FeedDownloader> {
    let vulndb = &config.vulndb;
    let mut builder = config
        .proxy
        .route(berth_outbound::Component::Trivy)?
        .client_builder()?
        .timeout(std::time::Duration::from_secs(vulndb.timeout_seconds.max(1)))
        .connect_timeout(std::time::Duration::from_secs(30))
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &vulndb.ca_file {
        let pem = std::fs::read(path).with_context(|| format!("reading vulndb.ca_file {}", path.display()))?;
        for root in reqwest::Certificate::from_pem_bundle(&pem).context("vulndb.ca_file")? {
            builder = builder.add_root_certificate(root);
        }
    }
    for url in &vulndb.urls {
        anyhow::ensure!(
            url.starts_with("http://") || url.starts_with("https://"),
            "vulndb.urls: {url:?} is not an http:// or https:// URL"
        );
    }
    let client = builder.build().context("vulndb: the download client")?;
    Ok(berth_scan::download::FeedDownloader::new(db, client, vulndb.urls.clone(), config.data_dir.join("downloads")))
}

/// The standing schedule of feed downloads (removed when no feed is configured), and a first
/// download now when a configured feed was never imported.
async fn schedule_feed_downloads(
    config: &Config,
    db: &Db,
    jobs: &berth_jobs::JobService,
    feeds: &berth_scan::download::FeedDownloader,
) -> anyhow::Result<()> {
    use berth_scan::download::JOB_KIND;
    if config.vulndb.urls.is_empty() {
        db.delete_job_schedule(JOB_KIND).await.context("removing the vulnerability database's schedule")?;
        return Ok(());
    }
    let cron = &config.vulndb.update_cron;
    berth_jobs::schedule::Cron::parse(cron).map_err(|_| {
        anyhow::anyhow!("vulndb.update_cron: {cron:?} is not a six-field cron (seconds first), e.g. \"0 0 */12 * * *\"")
    })?;
    db.ensure_job_schedule(JOB_KIND, "Custom", cron.trim(), "{}")
        .await
        .context("setting the vulnerability database's schedule")?;
    if feeds.any_never_imported().await.context("reading the vulnerability database")? {
        let id = jobs
            .enqueue(JOB_KIND, &serde_json::json!({}), berth_jobs::scheduler::SCHEDULED_ATTEMPTS)
            .await
            .context("queueing the first feed download")?;
        tracing::info!(job = id, "a configured feed was never imported: downloading now");
    }
    Ok(())
}

/// Creates the data directory on first start, and refuses one written by a newer Berth. The
/// directory and what is in it are the owner's only, whatever the umask: the database holds
/// password hashes and the blobs private images. Files this process creates are made so by
/// the umask the binary sets at start; what an older version or another umask left is fixed
/// here, and said.
pub(crate) fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("creating data directory {}", dir.display()))?;
    let private = |path: &Path, mode: u32| -> anyhow::Result<()> {
        let found = std::fs::symlink_metadata(path)?;
        if found.file_type().is_symlink() {
            return Ok(());
        }
        let had = found.permissions().mode() & 0o777;
        if had & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("making {} owner-only", path.display()))?;
            tracing::warn!(path = %path.display(), mode = format!("{had:o}"), "made owner-only");
        }
        Ok(())
    };
    private(dir, 0o700)?;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let mode = if entry.file_type()?.is_dir() { 0o700 } else { 0o600 };
        private(&entry.path(), mode)?;
    }
    let marker = dir.join(LAYOUT_FILE);
    match std::fs::read_to_string(&marker) {
        Ok(text) => {
            let found: u32 = text.trim().parse().with_context(|| format!("{} is corrupt", marker.display()))?;
            anyhow::ensure!(
                found <= DATA_LAYOUT_VERSION,
                "data directory {} has layout version {found}, newer than this build knows ({DATA_LAYOUT_VERSION})",
                dir.display()
            );
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&marker, format!("{DATA_LAYOUT_VERSION}\n"))?;
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", marker.display())),
    }
    Ok(())
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    prepare_data_dir(&config.data_dir)?;
    let db = open_database(&config).await?;
    let starting_settings = config.starting_settings()?;
    let forward_options = config.audit.forward_options()?;
    let password_workers = config.login.password_workers()?;
    let proxy = config.proxy.settings()?;
    tracing::info!("outbound proxy: {}", proxy.describe());
    let store = config.blob_store()?;
    let shared = match config.redis.kind {
        RedisKind::None => None,
        RedisKind::External => {
            let shared = config.redis.external.connect()?;
            // Not fatal: Berth works without Redis, and the client reconnects by itself.
            if let Err(e) = shared.ping().await {
                tracing::warn!(error = %e, "Redis does not answer yet; going on without it until it does");
            }
            Some(shared)
        }
    };
    let mut registry = Registry::new(db.clone(), store).with_settings(starting_settings, forward_options);
    if config.storage.redirect {
        registry = registry.with_blob_redirect(std::time::Duration::from_secs(config.storage.redirect_seconds.max(1)));
    }
    if let Some(shared) = &shared {
        registry = registry.with_shared(shared.clone());
    }
    let registry = Arc::new(registry);
    // Before any write: the settings decide what the audit log keeps.
    registry.settings().reload().await.context("reading the system configuration")?;
    bootstrap_identities(&db, &config, &password_workers).await?;
    let caches = registry.caches().clone();
    let cache_follower = tokio::spawn(caches.clone().follow());
    let settings_follower = tokio::spawn(registry.settings().clone().follow(caches.clone()));
    let pulls = registry.pulls().clone();
    let pull_flusher = tokio::spawn(async move { pulls.run(std::time::Duration::from_secs(1)).await });
    // The job service: a pool of runners on this replica (a long collection does not hold up
    // the rest), and the scheduler, whose firings are claimed in the database (once per
    // cluster). Every kind of background work is a job: collections, audit purges, retention,
    // scans, housekeeping.
    anyhow::ensure!(config.gc.time_window_hours >= 0, "gc.time_window_hours must be 0 or more");
    let housekeeping_cron = config.maintenance.cron()?;
    let mut jobs = berth_jobs::JobService::new(db.clone(), config.jobs.settings());
    jobs.refuse_changes_while(registry.settings().read_only_gate());
    jobs.register(Arc::new(berth_gc::GarbageCollector::new(registry.clone(), config.gc.time_window_hours)));
    jobs.register(Arc::new(berth_core::purge::PurgeAuditWorker::new(db.clone())));
    jobs.register(Arc::new(berth_retention::RetentionWorker::new(registry.clone())));
    jobs.register(Arc::new(berth_scan::job::ScanWorker::new(db.clone(), registry.store().clone())));
    jobs.register(Arc::new(berth_scan::scan_all::ScanAllWorker::new(db.clone())));
    jobs.register(Arc::new(berth_scan::report_index::ReportIndexer::new(db.clone())));
    jobs.register(Arc::new(berth_core::maintenance::Housekeeping::new(
        registry.clone(),
        config.maintenance.settings(&config.jobs, &config.gc),
    )));
    db.ensure_job_schedule(berth_core::maintenance::JOB_KIND, "Custom", &housekeeping_cron, "{}")
        .await
        .context("setting the housekeeping schedule")?;
    let feeds = Arc::new(feed_downloader(&config, db.clone())?);
    jobs.register(feeds.clone());
    schedule_feed_downloads(&config, &db, &jobs, &feeds).await?;
    let job_pool = Arc::new(jobs).start(config.jobs.runners.max(1)).await.context("starting the job service")?;
    let scheduler = berth_jobs::scheduler::Scheduler::new(db.clone()).spawn(std::time::Duration::from_secs(1));
    config.metrics.check()?;
    let limits = config.http.limits()?;
    let metrics = config.metrics.enabled.then(|| berth_api::MetricsOptions {
        path: config.metrics.path.clone(),
        require_admin: config.metrics.require_admin,
    });
    let options = berth_api::ApiOptions {
        max_concurrent_requests: config.http.max_concurrent_requests,
        metrics,
        max_uploads_per_client: config.http.max_uploads_per_client,
    };
    let secret_key = load_secret_key(&config, &db).await?;
    let tokens = Arc::new(load_token_issuer(&config, &db, &secret_key).await?);
    let tls = match config.tls.enabled {
        true => {
            let hosts = config.tls.hosts(&config.http.addr, config.external_url.as_deref());
            Some(crate::tls::server_tls(&config.tls, &hosts, load_ca(&config, &db, &secret_key)).await?)
        }
        false => None,
    };
    let identities = match &shared {
        Some(shared) => {
            berth_core::identity::Identities::with_shared(db.clone(), config.login.throttle(), shared.clone())
        }
        None => berth_core::identity::Identities::with_throttle(db.clone(), config.login.throttle()),
    }
    .with_caches(caches.clone())
    .with_password_workers(password_workers.clone());
    let auth = Arc::new(berth_api::auth::HarborAuth::new(
        identities.clone(),
        tokens,
        registry.settings().clone(),
        config.external_url.clone(),
    ));
    let harbor = Arc::new(berth_api::harbor::HarborApi {
        auth: auth.clone(),
        registry: registry.clone(),
        identities,
        projects: berth_core::projects::Projects::new(&registry),
        users: berth_core::users::Users::new(&registry).with_password_workers(password_workers),
        robots: berth_core::robots::Robots::new(&registry),
        retention: berth_retention::Retention::new(&registry),
        ca_certificate: match &config.tls.ca_file {
            Some(path) => {
                Some(std::fs::read_to_string(path).with_context(|| format!("reading tls.ca_file {}", path.display()))?)
            }
            None => tls.as_ref().and_then(|t| t.ca_pem.clone()),
        },
        external_url: config.external_url.clone(),
        gc_time_window_hours: config.gc.time_window_hours,
        job_lease: config.jobs.settings().lease,
    });
    let registry_for_shutdown = registry.clone();
    let metrics_port = match config.metrics.addr(&config.http.addr).filter(|_| config.metrics.enabled) {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("binding metrics.port at {addr}"))?;
            let local = listener.local_addr()?;
            // With TLS, the metrics port speaks it too (Harbor's internal TLS for metrics).
            let scheme = if tls.is_some() { "https" } else { "http" };
            tracing::info!(addr = %local, "metrics on {scheme}://{local}{}", config.metrics.path);
            let app = berth_api::metrics_router(registry.clone(), &config.metrics.path);
            let tls = tls.as_ref().map(|t| t.config.clone());
            Some(tokio::spawn(berth_api::serve_with(listener, app, limits.clone(), tls, std::future::pending())))
        }
        None => None,
    };
    let app = berth_api::router(registry, auth.clone(), Some(auth), Some(harbor), &options);

    let listener = tokio::net::TcpListener::bind(&config.http.addr)
        .await
        .with_context(|| format!("binding {}", config.http.addr))?;
    let local = listener.local_addr()?;
    // Plain HTTP beside TLS, when asked, stops with the main listener.
    let (stop_plain, plain_stopped) = tokio::sync::watch::channel(());
    let plain = match (&tls, &config.tls.http_addr) {
        (Some(_), Some(addr)) => {
            let plain =
                tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding tls.http_addr {addr}"))?;
            let plain_local = plain.local_addr()?;
            tracing::info!(addr = %plain_local, "plain HTTP also served at {plain_local}");
            let mut stopped = plain_stopped;
            let stopped = async move {
                let _ = stopped.changed().await;
            };
            Some(tokio::spawn(berth_api::serve(plain, app.clone(), limits.clone(), stopped)))
        }
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(addr = %local, "listening on {scheme}://{local}");
    let shutdown = async move {
        shutdown_signal().await;
        let _ = stop_plain.send(());
    };
    berth_api::serve_with(listener, app, limits, tls.map(|t| t.config), shutdown).await?;
    if let Some(plain) = plain {
        let _ = plain.await;
    }
    tracing::info!("in-flight requests finished; closing the database");
    pull_flusher.abort();
    scheduler.abort();
    // A job cut off here is taken over when its lease ends, by this replica restarted or
    // another, and resumes from its last checkpoint.
    job_pool.stop().await;
    if let Some(m) = metrics_port {
        m.abort();
    }
    cache_follower.abort();
    settings_follower.abort();
    if let Err(e) = registry_for_shutdown.pulls().flush().await {
        tracing::warn!(error = %e, "pull statistics of the last second were not written");
    }
    db.close().await;
    Ok(())
}

/// `berth admin audit verify`: the audit log's chain, walked.
pub async fn verify_audit_chain(config: &Config) -> anyhow::Result<berth_core::audit::ChainReport> {
    let db = open_database(config).await?;
    let report = db.verify_audit_chain().await.context("reading the audit log")?;
    db.close().await;
    Ok(report)
}

/// The embedded SQLite database in the data directory, or the external PostgreSQL one.
pub(crate) async fn open_database(config: &Config) -> anyhow::Result<Db> {
    match config.database.kind {
        DatabaseKind::Embedded => {
            Db::open_sqlite(&config.data_dir.join("berth.db")).await.context("opening the embedded database")
        }
        DatabaseKind::External => {
            let external = &config.database.external;
            let url = external.url()?;
            Db::connect(&url, external.max_connections).await.with_context(|| {
                format!("connecting to PostgreSQL at {}:{}/{}", external.host, external.port, external.database)
            })
        }
    }
}

/// The installation's secret key, generated at first start (embedded database), owner only.
const SECRET_KEY_FILE: &str = "secret-key";
/// The setting that holds the generated secret key when replicas share an external database.
const SECRET_KEY_SETTING: &str = "secret_key";

/// The key that seals secrets kept at rest (Harbor's `secretkey`), the same on every replica:
/// `secret_key_file` if configured (a mounted secret: then what the database holds is useless
/// without it); else, on an external database, key material generated once and kept there;
/// else generated once in the data directory.
async fn load_secret_key(config: &Config, db: &Db) -> anyhow::Result<berth_auth::seal::SecretKey> {
    use berth_auth::seal::SecretKey;
    let material = if let Some(path) = &config.secret_key_file {
        std::fs::read_to_string(path).with_context(|| format!("reading secret_key_file {}", path.display()))?
    } else if config.database.kind == DatabaseKind::External {
        let generated = SecretKey::generate_material()?;
        db.setting_or_insert(SECRET_KEY_SETTING, &generated).await?
    } else {
        let path = config.data_dir.join(SECRET_KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(material) => material,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let material = SecretKey::generate_material()?;
                write_private(&path, &material)?;
                material
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
    };
    Ok(SecretKey::from_material(material.trim_end_matches(['\n', '\r']).as_bytes())?)
}

/// The automatic TLS certificates' CA (`tls.enabled` without files), made at first start.
const TLS_CA_FILE: &str = "tls-ca.pem";
/// The setting that holds it, sealed with the secret key, when replicas share a database.
const TLS_CA_SETTING: &str = "tls_ca_pem";

/// The CA (certificate, key) of the automatic certificates: one per installation, so that every
/// replica's certificate chains to the CA `getcert` serves. Kept as one PEM text (the
/// certificate, then the key) so that replicas racing to make it all take the same pair.
async fn load_ca(
    config: &Config,
    db: &Db,
    secret_key: &berth_auth::seal::SecretKey,
) -> anyhow::Result<(String, String)> {
    let pem = if config.database.kind == DatabaseKind::External {
        let (cert, key) = crate::tls::make_ca()?;
        let made = secret_key.seal(format!("{cert}{key}").as_bytes())?;
        let stored = db.setting_or_insert(TLS_CA_SETTING, &made).await?;
        let plain = secret_key.open(&stored).context("opening the TLS CA kept in the database")?;
        String::from_utf8(plain).context("the TLS CA in the database is not text")?
    } else {
        let path = config.data_dir.join(TLS_CA_FILE);
        match std::fs::read_to_string(&path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (cert, key) = crate::tls::make_ca()?;
                let pem = format!("{cert}{key}");
                write_private(&path, &pem)?;
                tracing::info!(file = %path.display(), "made the CA of the automatic TLS certificate");
                pem
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
    };
    let split = pem.find("-----BEGIN PRIVATE KEY-----").context("the TLS CA holds no key")?;
    Ok((pem[..split].to_string(), pem[split..].to_string()))
}

/// The registry token signing key, generated at first start, readable by the owner only.
const TOKEN_KEY_FILE: &str = "token-signing-key.pem";
/// The setting that holds the generated key when replicas share an external database.
const TOKEN_KEY_SETTING: &str = "token_signing_key_pem";

/// The key that signs registry tokens, which every replica must share so that a token issued
/// by one is accepted by all: the configured file (a mounted secret) if any; else, on an
/// external database, one generated once and kept there; else one generated once in the data
/// directory.
async fn load_token_issuer(
    config: &Config,
    db: &Db,
    secret_key: &berth_auth::seal::SecretKey,
) -> anyhow::Result<berth_auth::token::TokenIssuer> {
    use berth_auth::seal::SecretKey;
    let (pem, source) = if let Some(path) = &config.token.signing_key_file {
        let pem = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        (pem, path.display().to_string())
    } else if config.database.kind == DatabaseKind::External {
        // Kept sealed with the secret key: the database alone does not give the key away.
        let stored = match db.setting(TOKEN_KEY_SETTING).await? {
            Some(stored) => stored,
            None => {
                let generated = secret_key.seal(berth_auth::token::generate_key_pem()?.as_bytes())?;
                let stored = db.setting_or_insert(TOKEN_KEY_SETTING, &generated).await?;
                if stored == generated {
                    tracing::info!("generated the registry token signing key, kept sealed in the database");
                }
                stored
            }
        };
        let pem = if SecretKey::is_sealed(&stored) {
            let plain = secret_key.open(&stored).context(
                "opening the token signing key kept in the database: every replica needs the same secret key \
                 (secret_key_file)",
            )?;
            String::from_utf8(plain).context("the token signing key in the database is not text")?
        } else {
            // Kept by a version that did not seal it.
            stored
        };
        (pem, "the database".to_string())
    } else {
        let path = config.data_dir.join(TOKEN_KEY_FILE);
        let pem = match std::fs::read_to_string(&path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let pem = berth_auth::token::generate_key_pem()?;
                write_private(&path, &pem)?;
                tracing::info!(file = %path.display(), "generated the registry token signing key");
                pem
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        (pem, path.display().to_string())
    };
    let lifetime = std::time::Duration::from_secs(config.token.expiration_minutes.max(1) * 60);
    berth_auth::token::TokenIssuer::from_pem(&pem, lifetime)
        .with_context(|| format!("loading the token signing key from {source}"))
}

/// Writes a file only its owner can read, durably.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// File holding the generated first administrator password, readable by the owner only.
const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

/// On first start, creates the administrator and `library`; a generated password is printed
/// once and kept in a file only the owner can read (never logged).
async fn bootstrap_identities(
    db: &Db,
    config: &Config,
    workers: &berth_auth::hashing::PasswordWorkers,
) -> anyhow::Result<()> {
    let identities = berth_core::identity::Identities::new(db.clone()).with_password_workers(workers.clone());
    let given = config.admin_password()?;
    match identities.bootstrap(given.as_deref()).await? {
        Bootstrap::AlreadyDone => {}
        Bootstrap::Created { generated: None } => {
            tracing::info!(
                "created the administrator \"admin\" with the configured password, and the public project \"library\""
            );
        }
        Bootstrap::Created { generated: Some(password) } => {
            let path = config.data_dir.join(INITIAL_PASSWORD_FILE);
            write_private(&path, &format!("{password}\n"))?;
            tracing::warn!(file = %path.display(), "created the administrator \"admin\" with a generated password (printed once below, and kept in the file)");
            println!("berth: administrator \"admin\" password: {password}");
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}
