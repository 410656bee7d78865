//! `berth healthcheck`: the container image's health check. It asks the registry on this
//! machine for `/livez`, so that the image needs no curl: over plain HTTP (the listener, or
//! `tls.http_addr` beside TLS) it must answer 200; a TLS-only listener must accept the
//! connection (its certificate is the registry's business, not the health check's).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::Context;
use berth::config::Config;

const TIMEOUT: Duration = Duration::from_secs(3);

/// Where this machine reaches an address the registry listens on (`0.0.0.0` is every one of
/// its addresses, among them loopback).
fn local(addr: &str) -> anyhow::Result<SocketAddr> {
    let mut resolved = addr.to_socket_addrs().with_context(|| format!("resolving {addr}"))?;
    let mut target = resolved.next().with_context(|| format!("{addr} names no address"))?;
    if target.ip().is_unspecified() {
        let loopback: std::net::IpAddr =
            if target.is_ipv4() { std::net::Ipv4Addr::LOCALHOST.into() } else { std::net::Ipv6Addr::LOCALHOST.into() };
        target.set_ip(loopback);
    }
    Ok(target)
}

pub fn check(config: &Config) -> anyhow::Result<()> {
    let plain = match (config.tls.enabled, &config.tls.http_addr) {
        (false, _) => Some(config.http.addr.as_str()),
        (true, Some(addr)) => Some(addr.as_str()),
        (true, None) => None,
    };
    let Some(addr) = plain else {
        let target = local(&config.http.addr)?;
        TcpStream::connect_timeout(&target, TIMEOUT).with_context(|| format!("connecting to {target}"))?;
        return Ok(());
    };
    let target = local(addr)?;
    let mut stream = TcpStream::connect_timeout(&target, TIMEOUT).with_context(|| format!("connecting to {target}"))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.write_all(b"GET /livez HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 16];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..])? {
            0 => break,
            n => read += n,
        }
    }
    let status = String::from_utf8_lossy(&head[..read]).to_string();
    anyhow::ensure!(
        status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.0 200"),
        "/livez at {target} answered {status:?}"
    );
    Ok(())
}
