//! Readiness of the dependencies a replica needs: the database and blob storage. Each check is
//! bounded in time, so that a probe answers even while a dependency hangs.

use std::time::Duration;

use crate::Registry;

/// How long a dependency may take to answer a health check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One dependency's state: `None` when healthy, else why not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    pub name: &'static str,
    pub error: Option<String>,
    /// Whether the replica can serve without it. Redis is not required: losing it slows
    /// some things down and stops nothing, so it must not take every replica out of a load
    /// balancer at once.
    pub required: bool,
}

impl Component {
    pub fn healthy(&self) -> bool {
        self.error.is_none()
    }
}

/// Whether a replica with these components may serve: every required one is healthy.
pub fn ready(components: &[Component]) -> bool {
    components.iter().all(|c| c.healthy() || !c.required)
}

async fn check<F, E>(name: &'static str, required: bool, f: F) -> Component
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let error = match tokio::time::timeout(CHECK_TIMEOUT, f).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    };
    Component { name, error, required }
}

impl Registry {
    /// The database, storage and (when configured) Redis, checked concurrently.
    pub async fn health(&self) -> Vec<Component> {
        let database = check("database", true, self.db().ping());
        let storage = check("storage", true, self.storage_check());
        let redis = async {
            match self.shared() {
                Some(shared) => Some(check("redis", false, shared.ping()).await),
                None => None,
            }
        };
        let (database, storage, redis) = tokio::join!(database, storage, redis);
        [Some(database), Some(storage), redis].into_iter().flatten().collect()
    }
}
