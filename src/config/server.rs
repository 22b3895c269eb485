//! The `[server]` section: the address, the public URL, https, the proxies whose forwarding
//! headers are believed, and the per-client bounds.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use url::Url;

use super::file::ServerSection;
use super::parse::{parse_http_url, resolve};
use super::problems::Collector;

/// Requests per client address on the routes that make the bridge work (`[server.rate_limit]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// 0: no limit.
    pub per_minute: u32,
    pub burst: u32,
    pub exempt_loopback: bool,
}

/// An IP network (`10.0.0.0/8`, `::1/128`, or a single address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has a bad prefix length"))?,
            None => max,
        };
        Ok(Cidr { network, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// `[server]` checked; `None` where a key has a problem (it is in the collector).
pub(super) struct Server {
    pub listen: Option<SocketAddr>,
    pub public_base_url: Option<Url>,
    /// `Some(None)`: plain http.
    pub tls: Option<Option<Arc<rustls::ServerConfig>>>,
    pub trusted_proxies: Vec<Cidr>,
    pub rate_limit: RateLimit,
    pub max_connections_per_client: u32,
}

pub(super) fn build_server(server: &ServerSection, base: &Path, c: &mut Collector<'_>) -> Server {
    let listen = c.take(
        "server.listen",
        server
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| format!("{:?} is not host:port: {e}", server.listen)),
    );
    let public_base_url = if server.public_base_url.is_empty() {
        c.add(
            "server.public_base_url",
            "missing required key (the bridge's public URL, e.g. https://bridge.example.nl)",
        );
        None
    } else {
        c.take("server.public_base_url", parse_http_url(&server.public_base_url))
    };
    let tls = match (server.tls_cert.is_empty(), server.tls_key.is_empty()) {
        (true, true) => Some(None),
        (false, false) => c
            .take(
                "server.tls_cert",
                server_tls(&resolve(base, &server.tls_cert), &resolve(base, &server.tls_key)),
            )
            .map(Some),
        _ => {
            c.add("server.tls_cert", "server.tls_cert and server.tls_key go together");
            None
        }
    };
    let trusted_proxies: Vec<Cidr> = server
        .trusted_proxies
        .iter()
        .filter_map(|t| c.take("server.trusted_proxies", t.parse::<Cidr>()))
        .collect();
    let rate_limit = RateLimit {
        per_minute: server.rate_limit.per_minute,
        burst: server.rate_limit.burst,
        exempt_loopback: server.rate_limit.exempt_loopback,
    };
    if rate_limit.per_minute > 0 && rate_limit.burst == 0 {
        c.add(
            "server.rate_limit.burst",
            "must be at least 1 while per_minute is set (0 would refuse everyone)",
        );
    }
    Server {
        listen,
        public_base_url,
        tls,
        trusted_proxies,
        rate_limit,
        // Above the cap of all connections (10,000) it simply never binds: no error.
        max_connections_per_client: server.max_connections_per_client,
    }
}

/// The rustls server config for `server.tls_cert`/`server.tls_key` (HTTP/1.1, TLS 1.2 and 1.3).
fn server_tls(cert_path: &Path, key_path: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let cert_pem = std::fs::read(cert_path).map_err(|e| format!("cannot read {}: {e}", cert_path.display()))?;
    let chain: Vec<rustls::pki_types::CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert_path.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no PEM certificate", cert_path.display()));
    }
    let key_pem =
        std::fs::read(key_path).map_err(|e| format!("server.tls_key: cannot read {}: {e}", key_path.display()))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| format!("server.tls_key: {}: {e}", key_path.display()))?
        .ok_or_else(|| format!("server.tls_key: {} holds no PEM private key", key_path.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and server.tls_key do not make a pair: {e}"))?;
    // HTTP/1.1 only: the proxy path relies on its upgrade semantics (WebSockets).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
