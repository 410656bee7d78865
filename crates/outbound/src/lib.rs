//! The outbound proxy: Harbor's `proxy.http_proxy`, `https_proxy`, `no_proxy` and
//! `components`, resolved for each of Berth's outbound HTTP clients.
//!
//! Harbor hands these to the listed containers as `HTTP_PROXY`-style variables. Berth is one
//! process, so each outbound client asks for the [`Route`] of the Harbor component it stands
//! for ([`Component`]) and builds its HTTP client with it:
//!
//! - a listed component's client sends `http://` requests through `http_proxy` and
//!   `https://` requests through `https_proxy` (a CONNECT tunnel), but for hosts `no_proxy`
//!   names;
//! - a component not listed goes direct, even when the process's environment names a proxy
//!   (reqwest reads those variables by default; every route turns that off, so what the
//!   configuration says is all that counts);
//! - loopback (`localhost`, `127.0.0.0/8`, `::1`) is never proxied, as in Go's
//!   `ProxyFromEnvironment`, which Harbor's components use: a proxy cannot reach the host's
//!   loopback, and Harbor's users expect a MinIO or a feed mirror on `localhost` to work
//!   with a proxy set.
//!
//! Where the configuration names no proxy at all, the standard variables (`HTTP_PROXY`,
//! `HTTPS_PROXY`, `NO_PROXY`, upper or lower case) fill it in, so that Berth behaves as curl
//! and Go programs do in the same environment ([`ProxySettings::with_environment`]).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Always direct: what Go's `ProxyFromEnvironment` never proxies.
const LOOPBACK: &str = "localhost,127.0.0.0/8,::1";

/// The Harbor component an outbound client stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    /// Harbor's core: identity providers (OIDC discovery and tokens) and the trace exporter.
    Core,
    /// Harbor's job service: webhooks, replication and external scanner adapters.
    Jobservice,
    /// Harbor's registry: object storage (S3, GCS, Azure, Swift, OSS).
    Registry,
    /// Harbor's Trivy: the vulnerability database download.
    Trivy,
}

impl Component {
    pub const ALL: [Component; 4] = [Component::Core, Component::Jobservice, Component::Registry, Component::Trivy];

    pub fn as_str(self) -> &'static str {
        match self {
            Component::Core => "core",
            Component::Jobservice => "jobservice",
            Component::Registry => "registry",
            Component::Trivy => "trivy",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{key}: {value:?} is not a proxy URL (http://host:port, with optional user:password@): {reason}")]
    BadUrl { key: &'static str, value: String, reason: String },
}

/// The proxy settings of an installation (Harbor's `proxy` section), checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    http_proxy: Option<String>,
    https_proxy: Option<String>,
    no_proxy: Option<String>,
    components: BTreeSet<Component>,
}

impl ProxySettings {
    /// Settings from Harbor's keys; an empty value is no value (Harbor's template leaves them
    /// blank). A URL reqwest cannot use is refused here, at start, not at the first request.
    pub fn new(
        http_proxy: Option<&str>,
        https_proxy: Option<&str>,
        no_proxy: Option<&str>,
        components: impl IntoIterator<Item = Component>,
    ) -> Result<ProxySettings, ProxyError> {
        let given = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        let settings = ProxySettings {
            http_proxy: given(http_proxy),
            https_proxy: given(https_proxy),
            no_proxy: given(no_proxy),
            components: components.into_iter().collect(),
        };
        for (key, value) in [("proxy.http_proxy", &settings.http_proxy), ("proxy.https_proxy", &settings.https_proxy)] {
            if let Some(value) = value {
                check_url(key, value)?;
            }
        }
        Ok(settings)
    }

    /// Fills what the configuration left unset from the standard variables (`lookup` is
    /// `std::env::var` but in tests): a proxy from `HTTP_PROXY`/`http_proxy` and
    /// `HTTPS_PROXY`/`https_proxy` only when neither proxy is configured, so that a
    /// configuration that names one is not half-overridden; `NO_PROXY`/`no_proxy` when
    /// `no_proxy` is unset.
    pub fn with_environment(self, lookup: impl Fn(&str) -> Option<String>) -> Result<ProxySettings, ProxyError> {
        let var = |upper: &str| {
            lookup(upper).or_else(|| lookup(&upper.to_ascii_lowercase())).filter(|v| !v.trim().is_empty())
        };
        let configured = self.http_proxy.is_some() || self.https_proxy.is_some();
        let http = if configured { self.http_proxy.clone() } else { var("HTTP_PROXY") };
        let https = if configured { self.https_proxy.clone() } else { var("HTTPS_PROXY") };
        let no_proxy = self.no_proxy.clone().or_else(|| var("NO_PROXY"));
        ProxySettings::new(http.as_deref(), https.as_deref(), no_proxy.as_deref(), self.components)
    }

    /// The route of `component`'s clients.
    pub fn route(&self, component: Component) -> Route {
        if !self.components.contains(&component) {
            return Route::direct();
        }
        Route {
            http_proxy: self.http_proxy.clone(),
            https_proxy: self.https_proxy.clone(),
            no_proxy: match &self.no_proxy {
                Some(listed) => format!("{listed},{LOOPBACK}"),
                None => LOOPBACK.to_string(),
            },
        }
    }

    /// What the settings say, for the start-up line (credentials in the URLs hidden).
    pub fn describe(&self) -> String {
        if self.http_proxy.is_none() && self.https_proxy.is_none() {
            return "direct".to_string();
        }
        let components: Vec<&str> = self.components.iter().map(|c| c.as_str()).collect();
        format!(
            "http: {}, https: {}, no_proxy: {}, components: {}",
            self.http_proxy.as_deref().map_or("direct".into(), redact),
            self.https_proxy.as_deref().map_or("direct".into(), redact),
            self.no_proxy.as_deref().unwrap_or("-"),
            components.join(",")
        )
    }
}

fn check_url(key: &'static str, value: &str) -> Result<(), ProxyError> {
    let bad = |reason: String| ProxyError::BadUrl { key, value: redact(value), reason };
    let scheme = value.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http" | "https") => {}
        _ => return Err(bad("it needs a scheme: http:// or https://".into())),
    }
    reqwest::Proxy::all(value).map(|_| ()).map_err(|e| bad(e.to_string()))
}

/// A proxy URL with its password hidden.
fn redact(url: &str) -> String {
    match url.split_once("://").and_then(|(scheme, rest)| Some((scheme, rest.split_once('@')?))) {
        Some((scheme, (userinfo, host))) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

/// How one outbound client reaches its servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    http_proxy: Option<String>,
    https_proxy: Option<String>,
    /// Hosts reached directly: the configured `no_proxy` and loopback.
    no_proxy: String,
}

impl Default for Route {
    fn default() -> Route {
        Route::direct()
    }
}

impl Route {
    /// No proxy, whatever the environment says.
    pub fn direct() -> Route {
        Route { http_proxy: None, https_proxy: None, no_proxy: LOOPBACK.to_string() }
    }

    /// The proxy for requests to URLs of `scheme` (`http` or `https`), if any.
    pub fn proxy_for(&self, scheme: &str) -> Option<&str> {
        match scheme {
            "http" => self.http_proxy.as_deref(),
            "https" => self.https_proxy.as_deref(),
            _ => None,
        }
    }

    /// Hosts reached directly, in `NO_PROXY`'s syntax.
    pub fn no_proxy(&self) -> &str {
        &self.no_proxy
    }

    /// The proxies a reqwest client of this route adds after `no_proxy()` (which turns off
    /// reqwest's own reading of the environment): works for the async and the blocking
    /// builder alike.
    pub fn reqwest_proxies(&self) -> Result<Vec<reqwest::Proxy>, ProxyError> {
        let mut proxies = Vec::new();
        for (scheme, url) in [("http", &self.http_proxy), ("https", &self.https_proxy)] {
            let Some(url) = url else { continue };
            let proxy = if scheme == "http" { reqwest::Proxy::http(url) } else { reqwest::Proxy::https(url) };
            let key = if scheme == "http" { "proxy.http_proxy" } else { "proxy.https_proxy" };
            let proxy = proxy.map_err(|e| ProxyError::BadUrl { key, value: redact(url), reason: e.to_string() })?;
            proxies.push(proxy.no_proxy(reqwest::NoProxy::from_string(&self.no_proxy)));
        }
        Ok(proxies)
    }

    /// An async reqwest client builder on this route.
    pub fn client_builder(&self) -> Result<reqwest::ClientBuilder, ProxyError> {
        let mut builder = reqwest::Client::builder().no_proxy();
        for proxy in self.reqwest_proxies()? {
            builder = builder.proxy(proxy);
        }
        Ok(builder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(name, _)| *name == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn a_listed_component_is_routed_and_an_unlisted_one_goes_direct() {
        let settings = ProxySettings::new(
            Some("http://proxy.corp:3128"),
            Some("http://secure.corp:3129"),
            Some(".internal,10.0.0.0/8"),
            [Component::Trivy, Component::Registry],
        )
        .unwrap();
        let trivy = settings.route(Component::Trivy);
        assert_eq!(trivy.proxy_for("http"), Some("http://proxy.corp:3128"));
        assert_eq!(trivy.proxy_for("https"), Some("http://secure.corp:3129"));
        assert_eq!(trivy.no_proxy(), ".internal,10.0.0.0/8,localhost,127.0.0.0/8,::1");
        assert_eq!(trivy.reqwest_proxies().unwrap().len(), 2);
        let core = settings.route(Component::Core);
        assert_eq!(core, Route::direct());
        assert!(core.reqwest_proxies().unwrap().is_empty());
    }

    #[test]
    fn blank_values_are_no_values() {
        let settings = ProxySettings::new(Some(""), Some("  "), Some(""), Component::ALL).unwrap();
        assert_eq!(settings.route(Component::Trivy), Route::direct());
        assert_eq!(settings.describe(), "direct");
    }

    #[test]
    fn a_url_without_a_scheme_is_refused() {
        let err = ProxySettings::new(Some("proxy.corp:3128"), None, None, Component::ALL).unwrap_err();
        assert!(err.to_string().contains("proxy.http_proxy"), "{err}");
        let err = ProxySettings::new(None, Some("ftp://proxy.corp"), None, Component::ALL).unwrap_err();
        assert!(err.to_string().contains("proxy.https_proxy"), "{err}");
    }

    #[test]
    fn the_environment_fills_only_what_is_not_configured() {
        let vars = env(&[("HTTP_PROXY", "http://env:1"), ("https_proxy", "http://env:2"), ("NO_PROXY", "corp")]);
        let none = ProxySettings::new(None, None, None, Component::ALL).unwrap();
        let filled = none.with_environment(&vars).unwrap();
        let route = filled.route(Component::Core);
        assert_eq!(route.proxy_for("http"), Some("http://env:1"));
        assert_eq!(route.proxy_for("https"), Some("http://env:2"));
        assert!(route.no_proxy().starts_with("corp,"));
        // A configured proxy is not half-overridden by the environment's other one.
        let configured = ProxySettings::new(Some("http://conf:3"), None, Some("x"), Component::ALL).unwrap();
        let kept = configured.with_environment(&vars).unwrap().route(Component::Core);
        assert_eq!(kept.proxy_for("http"), Some("http://conf:3"));
        assert_eq!(kept.proxy_for("https"), None);
        assert!(kept.no_proxy().starts_with("x,"));
    }

    #[test]
    fn passwords_are_not_shown() {
        let settings = ProxySettings::new(Some("http://me:secret@proxy:3128"), None, None, Component::ALL).unwrap();
        let shown = settings.describe();
        assert!(!shown.contains("secret") && shown.contains("me:***@proxy:3128"), "{shown}");
    }
}
