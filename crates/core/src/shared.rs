//! Redis, when configured: state that replicas share (failed-login counts now; cache
//! invalidation later). Every call is bounded in time and its failure is for the caller to
//! absorb, so that losing Redis slows nothing down for long and stops nothing: callers keep a
//! per-process fallback.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// The longest a Redis call may take before the caller goes on without it.
const CALL_TIMEOUT: Duration = Duration::from_millis(300);

#[derive(Clone)]
pub struct SharedState {
    conn: ConnectionManager,
    prefix: String,
}

impl SharedState {
    /// A client for `url` (`redis://[user:password@]host:port/db`, or `rediss://` for TLS). It
    /// connects on first use and reconnects by itself.
    pub fn connect(url: &str) -> Result<SharedState, String> {
        SharedState::connect_with_prefix(url, "berth:")
    }

    /// As [`SharedState::connect`], with keys under `prefix` (tests keep theirs apart).
    pub fn connect_with_prefix(url: &str, prefix: &str) -> Result<SharedState, String> {
        let client = redis::Client::open(url).map_err(|e| format!("redis: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| format!("redis: {e}"))?;
        Ok(SharedState { conn, prefix: prefix.into() })
    }

    /// A key in Berth's namespace.
    pub(crate) fn key(&self, parts: &[&str]) -> String {
        format!("{}{}", self.prefix, parts.join(":"))
    }

    /// Runs a pipeline within [`CALL_TIMEOUT`].
    pub(crate) async fn query<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, String> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(CALL_TIMEOUT, pipe.query_async(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(format!("redis: {e}")),
            Err(_) => Err(format!("redis: no answer within {} ms", CALL_TIMEOUT.as_millis())),
        }
    }

    /// A round trip, for health checks.
    pub async fn ping(&self) -> Result<(), String> {
        let mut pipe = redis::pipe();
        pipe.cmd("PING");
        self.query::<(String,)>(&pipe).await.map(|_| ())
    }
}
