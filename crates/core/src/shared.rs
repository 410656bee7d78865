//! Redis, when configured: state that replicas share (failed-login counts) and messages
//! between them (cache invalidations). Every call is bounded in time and its failure is for the caller to
//! absorb, so that losing Redis slows nothing down for long and stops nothing: callers keep a
//! per-process fallback. Redis is reached directly or through Sentinel.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, TlsCertificates, TlsMode};

/// The longest a Redis call may take before the caller goes on without it.
const CALL_TIMEOUT: Duration = Duration::from_millis(300);
/// How often a subscription checks that its connection still answers.
const KEEPALIVE: Duration = Duration::from_secs(5);

/// How the data nodes are authenticated and which database is used (through Sentinel, the
/// master's address comes from the Sentinels).
#[derive(Clone, Debug, Default)]
pub struct NodeAuth {
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
}

/// TLS to the Sentinels and the data nodes, trusting `ca` (a PEM bundle), else the system's
/// roots; with `client`, presenting that certificate and key (PEM) to servers that ask.
#[derive(Clone, Debug, Default)]
pub struct Tls {
    pub ca: Option<Vec<u8>>,
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl Tls {
    /// The certificates for the client library, or `None` for its defaults (the system's
    /// roots, no client certificate).
    fn certificates(&self) -> Option<TlsCertificates> {
        if self.ca.is_none() && self.client.is_none() {
            return None;
        }
        Some(TlsCertificates {
            client_tls: self
                .client
                .as_ref()
                .map(|(cert, key)| redis::ClientTlsConfig { client_cert: cert.clone(), client_key: key.clone() }),
            root_cert: self.ca.clone(),
        })
    }
}

#[derive(Clone)]
enum Backend {
    /// One server, reconnected by the client library (the client opens subscriptions).
    Direct(ConnectionManager, Arc<redis::Client>),
    /// The master that the Sentinels name; after an error the connection is dropped, so the
    /// next call asks the Sentinels again and follows a failover.
    Sentinel {
        client: Arc<tokio::sync::Mutex<SentinelClient>>,
        conn: Arc<tokio::sync::Mutex<Option<MultiplexedConnection>>>,
    },
}

#[derive(Clone)]
pub struct SharedState {
    backend: Backend,
    prefix: String,
}

fn redis_error(e: impl std::fmt::Display) -> String {
    format!("redis: {e}")
}

/// A Redis call bounded to [`CALL_TIMEOUT`].
async fn within<T>(call: impl std::future::Future<Output = redis::RedisResult<T>>) -> Result<T, String> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(r) => r.map_err(redis_error),
        Err(_) => Err(format!("redis: no answer within {} ms", CALL_TIMEOUT.as_millis())),
    }
}

impl SharedState {
    /// A client for `url` (`redis://[user:password@]host:port/db`). It connects on first use
    /// and reconnects by itself.
    pub fn connect(url: &str) -> Result<SharedState, String> {
        SharedState::connect_with_prefix(url, "berth:")
    }

    /// As [`SharedState::connect`], with keys under `prefix` (tests keep theirs apart).
    pub fn connect_with_prefix(url: &str, prefix: &str) -> Result<SharedState, String> {
        SharedState::from_client(redis::Client::open(url).map_err(redis_error)?, prefix)
    }

    /// Over TLS (`rediss://...`), as `tls` says.
    pub fn connect_tls(url: &str, tls: Tls, prefix: &str) -> Result<SharedState, String> {
        let client = match tls.certificates() {
            Some(certificates) => redis::Client::build_with_tls(url, certificates).map_err(redis_error)?,
            None => redis::Client::open(url).map_err(redis_error)?,
        };
        SharedState::from_client(client, prefix)
    }

    fn from_client(client: redis::Client, prefix: &str) -> Result<SharedState, String> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(redis_error)?;
        Ok(SharedState { backend: Backend::Direct(conn, Arc::new(client)), prefix: prefix.into() })
    }

    /// A client for the master named `master` by the Sentinels at `sentinels` (`host:port`),
    /// over TLS to both when `tls` is given.
    pub fn connect_sentinel(
        sentinels: &[String],
        master: &str,
        auth: NodeAuth,
        tls: Option<Tls>,
        prefix: &str,
    ) -> Result<SharedState, String> {
        let mut addrs = Vec::new();
        for sentinel in sentinels {
            let (host, port) = sentinel
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.trim_matches(['[', ']']).to_string(), p.parse::<u16>().ok()?)))
                .ok_or_else(|| format!("redis: a Sentinel address must be host:port, not {sentinel:?}"))?;
            addrs.push(match tls {
                Some(_) => ConnectionAddr::TcpTls { host, port, insecure: false, tls_params: None },
                None => ConnectionAddr::Tcp(host, port),
            });
        }
        let mut builder = SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)
            .map_err(redis_error)?
            .set_client_to_redis_db(auth.db);
        if let Some(u) = &auth.username {
            builder = builder.set_client_to_redis_username(u);
        }
        if let Some(p) = &auth.password {
            builder = builder.set_client_to_redis_password(p);
        }
        if let Some(tls) = tls {
            builder =
                builder.set_client_to_redis_tls_mode(TlsMode::Secure).set_client_to_sentinel_tls_mode(TlsMode::Secure);
            if let Some(certificates) = tls.certificates() {
                builder = builder
                    .set_client_to_redis_certificates(certificates.clone())
                    .set_client_to_sentinel_certificates(certificates);
            }
        }
        let client = builder.build().map_err(redis_error)?;
        Ok(SharedState {
            backend: Backend::Sentinel { client: Arc::new(tokio::sync::Mutex::new(client)), conn: Default::default() },
            prefix: prefix.into(),
        })
    }

    /// A key in Berth's namespace.
    pub(crate) fn key(&self, parts: &[&str]) -> String {
        format!("{}{}", self.prefix, parts.join(":"))
    }

    /// Runs a pipeline within [`CALL_TIMEOUT`].
    pub(crate) async fn query<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, String> {
        match &self.backend {
            Backend::Direct(conn, _) => {
                let mut conn = conn.clone();
                within(pipe.query_async(&mut conn)).await
            }
            Backend::Sentinel { client, conn } => {
                let mut slot = conn.lock().await;
                let mut current = match slot.as_ref() {
                    Some(c) => c.clone(),
                    None => {
                        let config = AsyncConnectionConfig::new()
                            .set_connection_timeout(Some(CALL_TIMEOUT))
                            .set_response_timeout(Some(CALL_TIMEOUT));
                        let mut client = client.lock().await;
                        let fresh = match tokio::time::timeout(
                            CALL_TIMEOUT * 3,
                            client.get_async_connection_with_config(&config),
                        )
                        .await
                        {
                            Ok(r) => r.map_err(redis_error)?,
                            Err(_) => return Err("redis: the Sentinels named no reachable master in time".into()),
                        };
                        *slot = Some(fresh.clone());
                        fresh
                    }
                };
                drop(slot);
                let result = within(pipe.query_async(&mut current)).await;
                if result.is_err() {
                    // A failover, or a master demoted to replica: ask the Sentinels next time.
                    *conn.lock().await = None;
                }
                result
            }
        }
    }

    /// Sends `message` to every process subscribed to `channel` (in Berth's namespace).
    pub(crate) async fn publish(&self, channel: &str, message: &str) -> Result<(), String> {
        let mut pipe = redis::pipe();
        pipe.cmd("PUBLISH").arg(self.key(&[channel])).arg(message);
        self.query::<(i64,)>(&pipe).await.map(|_| ())
    }

    /// The messages published on `channel`, until the subscription breaks: the receiver then
    /// ends (a PING every few seconds notices a connection that died silently).
    pub(crate) async fn subscribe(&self, channel: &str) -> Result<tokio::sync::mpsc::Receiver<String>, String> {
        use futures_util::StreamExt;
        let client = match &self.backend {
            Backend::Direct(_, client) => client.as_ref().clone(),
            Backend::Sentinel { client, .. } => {
                let mut sentinel = client.lock().await;
                match tokio::time::timeout(CALL_TIMEOUT * 3, sentinel.async_get_client()).await {
                    Ok(r) => r.map_err(redis_error)?,
                    Err(_) => return Err("redis: the Sentinels named no reachable master in time".into()),
                }
            }
        };
        let mut pubsub = within(client.get_async_pubsub()).await?;
        within(pubsub.subscribe(self.key(&[channel]))).await?;
        let (mut sink, mut stream) = pubsub.split();
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(KEEPALIVE);
            ticker.tick().await;
            loop {
                tokio::select! {
                    message = stream.next() => {
                        let Some(message) = message else { break };
                        let Ok(text) = message.get_payload::<String>() else { continue };
                        if tx.send(text).await.is_err() {
                            break;
                        }
                    }
                    _ = ticker.tick() => {
                        if within(sink.ping::<String>()).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Ok(rx)
    }

    /// A round trip, for health checks.
    pub async fn ping(&self) -> Result<(), String> {
        let mut pipe = redis::pipe();
        pipe.cmd("PING");
        self.query::<(String,)>(&pipe).await.map(|_| ())
    }
}
