//! The authorization seam: every `/v2` request states the access it needs before it is served.
//!
//! The needed access is derived from the endpoint and method in one place
//! ([`required_access`]), and one [`Authorizer`] decides. A cross-repository mount asks again,
//! for pull on its source, from inside the handler.

use std::future::Future;
use std::pin::Pin;

use berth_auth::rbac::Subject;
use berth_oci::RepositoryName;
use http::Method;
use http::request::Parts;

use crate::error::ApiError;
use crate::route::Endpoint;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Pull,
    Push,
    Delete,
}

/// What a request needs: an action on a repository, or (`repository: None`) on the registry
/// itself (`/v2/` and `/v2/_catalog`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub repository: Option<RepositoryName>,
    pub action: Action,
    /// A mount's source (`?mount=&from=`), whose pull scope the challenge asks for too, so that
    /// a token client gets a token it can mount with instead of uploading again.
    pub mount_from: Option<RepositoryName>,
}

/// The outcome: who the caller is, or the error that refuses them (401 with a challenge, 403).
pub type Decision<'a> = Pin<Box<dyn Future<Output = Result<Subject, ApiError>> + Send + 'a>>;

/// Decides whether the caller described by the request headers has an access. The production
/// implementation is [`crate::auth::HarborAuthorizer`]; tests may put another policy here.
pub trait Authorizer: Send + Sync + 'static {
    /// `request` carries the headers and, in its extensions, the peer address
    /// (`ConnectInfo<SocketAddr>`).
    fn authorize<'a>(&'a self, request: &'a Parts, access: &'a Access) -> Decision<'a>;
}

/// The access a request needs, from its endpoint, method and query.
pub fn required_access(endpoint: &Endpoint, method: &Method, query: Option<&str>) -> Access {
    let action = match (endpoint, method) {
        (_, &Method::GET | &Method::HEAD) => Action::Pull,
        (Endpoint::Manifest(..) | Endpoint::Blob(..), &Method::DELETE) => Action::Delete,
        _ => Action::Push,
    };
    let mount_from = match endpoint {
        Endpoint::UploadStart(_) => query.and_then(|q| {
            let pairs: Vec<(String, String)> = form_urlencoded::parse(q.as_bytes()).into_owned().collect();
            let has_mount = pairs.iter().any(|(k, _)| k == "mount");
            let from = pairs.into_iter().find(|(k, _)| k == "from").map(|(_, v)| v);
            from.filter(|_| has_mount).and_then(|f| RepositoryName::parse(&f).ok())
        }),
        _ => None,
    };
    Access { repository: endpoint.repository().cloned(), action, mount_from }
}
