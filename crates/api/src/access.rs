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

/// The access a request needs, from its endpoint and method.
pub fn required_access(endpoint: &Endpoint, method: &Method) -> Access {
    let action = match (endpoint, method) {
        (_, &Method::GET | &Method::HEAD) => Action::Pull,
        (Endpoint::Manifest(..) | Endpoint::Blob(..), &Method::DELETE) => Action::Delete,
        _ => Action::Push,
    };
    Access { repository: endpoint.repository().cloned(), action }
}
