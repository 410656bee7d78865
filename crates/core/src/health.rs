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
}

impl Component {
    pub fn healthy(&self) -> bool {
        self.error.is_none()
    }
}

async fn check<F, E>(name: &'static str, f: F) -> Component
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let error = match tokio::time::timeout(CHECK_TIMEOUT, f).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    };
    Component { name, error }
}

impl Registry {
    /// The database and storage, checked concurrently.
    pub async fn health(&self) -> Vec<Component> {
        let database = check("database", self.db().ping());
        let storage = check("storage", async { self.storage_capacity().await.map(|_| ()) });
        let (database, storage) = tokio::join!(database, storage);
        vec![database, storage]
    }
}
