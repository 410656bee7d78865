//! Who the client is, network-wise: the TCP peer, or, when the peer is a proxy the operator
//! trusts (`http.trusted_proxies`), the address that proxy says it forwarded for.
//!
//! `X-Forwarded-For` and `Forwarded` are the client's own text unless a trusted proxy wrote
//! them: honoured from anyone, they let every client pick its address (and so dodge the
//! per-client limits, or frame another). From a trusted peer the header is read from the
//! right, skipping further trusted proxies; the first address not trusted is the client.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// The client's address, as every layer above the server reads it (login throttling, audit
/// records, per-client limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The client's address from a request's extensions: the server's [`ClientAddr`], else (a
/// router served by other means, as in tests) the TCP peer.
pub fn client_addr(extensions: &http::Extensions) -> Option<IpAddr> {
    match extensions.get::<ClientAddr>() {
        Some(c) => Some(c.0),
        None => extensions.get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| canonical(c.0.ip())),
    }
}

/// On a request that reached Berth over HTTPS: Berth's own TLS listener, or a trusted proxy said
/// so (`X-Forwarded-Proto: https`, or `proto=https` in `Forwarded`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverHttps;

impl TrustedProxies {
    /// Whether a trusted proxy in front says the client used HTTPS.
    pub fn forwarded_https(&self, peer: SocketAddr, headers: &HeaderMap) -> bool {
        if !self.trusts(peer.ip()) {
            return false;
        }
        let proto = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).map(str::trim);
        let forwarded = headers.get(http::header::FORWARDED).and_then(|v| v.to_str().ok()).is_some_and(|v| {
            v.split(',').next().unwrap_or("").split(';').any(|p| p.trim().eq_ignore_ascii_case("proto=https"))
        });
        proto.is_some_and(|p| p.eq_ignore_ascii_case("https")) || forwarded
    }
}

/// The local address a connection was accepted on (the server puts it on every request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalAddr(pub SocketAddr);

/// On a request whose connection to Berth itself is TLS (not a proxy's in front).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTls;

/// Berth's own URL for links and realms: `external_url` when configured, else the address the
/// client connected to. Never the `Host` header, which is the client's text.
pub fn own_url(external_url: Option<&str>, extensions: &http::Extensions) -> String {
    match (external_url, extensions.get::<LocalAddr>()) {
        (Some(url), _) => url.trim_end_matches('/').to_string(),
        (None, Some(local)) if extensions.get::<LocalTls>().is_some() => format!("https://{}", local.0),
        (None, Some(local)) => format!("http://{}", local.0),
        (None, None) => "http://localhost".to_string(),
    }
}

/// The proxies whose forwarding headers are believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

#[derive(Debug, thiserror::Error)]
#[error("http.trusted_proxies: {0:?} is neither an address nor a network (CIDR)")]
pub struct BadProxy(String);

impl TrustedProxies {
    /// Addresses (`10.0.0.7`) and networks (`10.0.0.0/8`, `fd00::/8`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<TrustedProxies, BadProxy> {
        let mut nets = Vec::new();
        for entry in entries {
            let e = entry.as_ref().trim();
            let net = match e.parse::<IpNet>() {
                Ok(n) => n,
                Err(_) => e.parse::<IpAddr>().map(IpNet::from).map_err(|_| BadProxy(e.to_string()))?,
            };
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    pub fn trusts(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.0.iter().any(|n| n.contains(&addr))
    }

    /// The client behind `peer`, given the request's headers.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer.ip());
        if !self.trusts(peer) {
            return peer;
        }
        let chain = forwarded_for(headers);
        // From the right: each hop was added by the proxy after it; stop at the first
        // address no trusted proxy stands for.
        let mut client = peer;
        for hop in chain.iter().rev() {
            client = canonical(*hop);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`) is the IPv4 address.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// The addresses of `Forwarded`'s `for=` parameters if it is present (RFC 7239), else of
/// `X-Forwarded-For`, in order; entries that are not addresses (`unknown`, obfuscated names)
/// end the chain there, since nothing left of them can be placed.
fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    let forwarded: Vec<&str> =
        headers.get_all(http::header::FORWARDED).iter().filter_map(|v| v.to_str().ok()).collect();
    let items: Vec<String> = if !forwarded.is_empty() {
        forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(k, _)| k.eq_ignore_ascii_case("for"))
                    .map(|(_, v)| v.trim().trim_matches('"').to_string())
                    .unwrap_or_default()
            })
            .collect()
    } else {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_string())
            .collect()
    };
    let mut addrs = Vec::new();
    for item in items.iter().rev() {
        match parse_node(item) {
            Some(a) => addrs.push(a),
            None => break,
        }
    }
    addrs.reverse();
    addrs
}

/// `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:443`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(a) = s.parse::<IpAddr>() {
        return Some(a);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).and_then(|r| r.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn peer(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 40000)
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8", "192.168.1.5"]).unwrap();
        let xff = headers(&[("x-forwarded-for", "203.0.113.9, 10.1.2.3")]);
        // From the proxy: the first untrusted hop from the right.
        assert_eq!(trusted.client(peer("10.0.0.2"), &xff), "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(trusted.client(peer("192.168.1.5"), &xff), "203.0.113.9".parse::<IpAddr>().unwrap());
        // From anyone else: the peer, whatever it claims.
        assert_eq!(trusted.client(peer("198.51.100.7"), &xff), "198.51.100.7".parse::<IpAddr>().unwrap());
        // A client cannot prepend its way past the proxy: the proxy's append is what counts.
        let spoofed = headers(&[("x-forwarded-for", "127.0.0.1, 203.0.113.9")]);
        assert_eq!(trusted.client(peer("10.0.0.2"), &spoofed), "203.0.113.9".parse::<IpAddr>().unwrap());
        // Nothing forwarded: the proxy itself.
        assert_eq!(trusted.client(peer("10.0.0.2"), &HeaderMap::new()), "10.0.0.2".parse::<IpAddr>().unwrap());
        // No proxies configured: always the peer.
        let none = TrustedProxies::default();
        assert_eq!(none.client(peer("10.0.0.2"), &xff), "10.0.0.2".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_forwarded_header_is_read_too() {
        let trusted = TrustedProxies::parse(&["10.0.0.2"]).unwrap();
        let h = headers(&[("forwarded", "for=\"[2001:db8::17]:4711\";proto=https, for=10.0.0.9")]);
        let trusted2 = TrustedProxies::parse(&["10.0.0.2", "10.0.0.9"]).unwrap();
        assert_eq!(trusted2.client(peer("10.0.0.2"), &h), "2001:db8::17".parse::<IpAddr>().unwrap());
        assert_eq!(trusted.client(peer("10.0.0.2"), &h), "10.0.0.9".parse::<IpAddr>().unwrap());
        let unknown = headers(&[("forwarded", "for=unknown, for=198.51.100.3")]);
        assert_eq!(trusted.client(peer("10.0.0.2"), &unknown), "198.51.100.3".parse::<IpAddr>().unwrap());
        // A mapped IPv4 peer is its IPv4 address.
        assert_eq!(trusted.client(peer("::ffff:10.0.0.2"), &h), "10.0.0.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn entries_must_be_addresses_or_networks() {
        assert!(TrustedProxies::parse(&["proxy.example"]).is_err());
        assert!(TrustedProxies::parse(&["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(&["::1", "fd00::/8"]).is_ok());
    }
}
