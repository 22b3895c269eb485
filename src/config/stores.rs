//! The `[sessions]` section validated into where login state lives (memory or Redis) and how
//! long a request may wait for it.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use url::Url;

use super::file::SessionsSection;
use super::problems::Collector;

/// Where pending logins, pending links, app sessions and the replay cache live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionBackend {
    /// In this process (one instance).
    Memory,
    /// In Redis, shared by every instance.
    Redis(RedisSettings),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    pub nodes: RedisNodes,
    /// Every key starts with this, so that several bridges (or tests) can share a server.
    pub prefix: String,
    /// PEM CA bundle for `rediss://`; `None` trusts the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Longest one store operation may take, reconnecting included.
    pub timeout: Duration,
    /// How long a session read from Redis may be reused without asking again (zero: never).
    pub local_cache: Duration,
    /// Bytes of pending logins (which anyone can start) one 10-minute window may add.
    pub pending_budget: u64,
}

/// The default of [`RedisSettings::pending_budget`], the memory store's bound.
pub const DEFAULT_PENDING_BUDGET: u64 = 64 * 1024 * 1024;

#[derive(Clone, PartialEq, Eq)]
pub enum RedisNodes {
    Single(String),
    Cluster(Vec<String>),
}

/// Without passwords: settings may end up in a debug log line.
impl fmt::Debug for RedisNodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisNodes::Single(url) => f.debug_tuple("Single").field(&redacted(url)).finish(),
            RedisNodes::Cluster(urls) => f
                .debug_tuple("Cluster")
                .field(&urls.iter().map(|u| redacted(u)).collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// The longest `sessions.local_cache` may be: a logout on another instance takes effect here
/// within this time at the latest.
pub const MAX_LOCAL_CACHE: Duration = Duration::from_secs(60);

/// A Redis URL as it may be shown: without its password.
pub fn redacted(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(unparsable URL)".to_string(),
    }
}

impl fmt::Display for SessionBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionBackend::Memory => write!(f, "memory"),
            SessionBackend::Redis(r) => match &r.nodes {
                RedisNodes::Single(url) => write!(f, "redis {} (prefix {:?})", redacted(url), r.prefix),
                RedisNodes::Cluster(urls) => write!(
                    f,
                    "redis cluster {} (prefix {:?})",
                    urls.iter().map(|u| redacted(u)).collect::<Vec<_>>().join(","),
                    r.prefix
                ),
            },
        }
    }
}

fn check_redis_url(url: &str) -> Result<bool, String> {
    let parsed = Url::parse(url).map_err(|e| format!("{:?} is not a URL: {e}", redacted(url)))?;
    match parsed.scheme() {
        "redis" => Ok(false),
        "rediss" => Ok(true),
        other => Err(format!("{other}:// is not redis:// or rediss://")),
    }
}

/// Validates the Redis part of `[sessions]` (only when `store = "redis"`).
pub(super) fn build_sessions(
    s: &SessionsSection,
    timeout: Option<Duration>,
    idle: Option<Duration>,
    base: &Path,
    c: &mut Collector,
) -> Option<SessionBackend> {
    let local_cache = c.take("sessions.local_cache", super::validate::parse_duration(&s.local_cache));
    match s.store.as_str() {
        "memory" => return Some(SessionBackend::Memory),
        "redis" => {}
        other => {
            c.add(
                "sessions.store",
                format!("{other:?} is not one of \"memory\", \"redis\""),
            );
            return None;
        }
    }
    // Every problem is collected before giving up, so `check-config` lists them all.
    let nodes_and_tls = if s.redis_cluster.is_empty() {
        c.take("sessions.redis_url", check_redis_url(&s.redis_url))
            .map(|tls| (RedisNodes::Single(s.redis_url.clone()), tls))
    } else {
        let schemes: Vec<bool> = s
            .redis_cluster
            .iter()
            .filter_map(|u| c.take("sessions.redis_cluster", check_redis_url(u)))
            .collect();
        if schemes.len() != s.redis_cluster.len() {
            None
        } else if schemes.iter().any(|tls| *tls != schemes[0]) {
            c.add("sessions.redis_cluster", "mixes redis:// and rediss:// nodes; use one");
            None
        } else {
            Some((RedisNodes::Cluster(s.redis_cluster.clone()), schemes[0]))
        }
    };
    let tls = nodes_and_tls.as_ref().is_none_or(|(_, tls)| *tls);
    if s.redis_prefix.is_empty() || s.redis_prefix.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
        c.add(
            "sessions.redis_prefix",
            "must be non-empty without spaces (e.g. \"entree-bridge:\")",
        );
    }
    let ca_pem = if s.redis_ca.is_empty() {
        None
    } else if !tls {
        c.add("sessions.redis_ca", "is only used with rediss:// (TLS) URLs");
        None
    } else {
        let path = super::validate::resolve(base, &s.redis_ca);
        c.take(
            "sessions.redis_ca",
            std::fs::read(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
                .and_then(|pem| match openssl::x509::X509::stack_from_pem(&pem) {
                    Ok(certs) if !certs.is_empty() => Ok(pem),
                    _ => Err(format!("{} holds no PEM certificate", path.display())),
                }),
        )
    };
    if let Some(local_cache) = local_cache {
        check_local_cache(local_cache, idle, c);
    }
    if timeout.is_some_and(|t| t.is_zero()) {
        c.add("sessions.timeout", "must be more than 0s");
    }
    let (nodes, _) = nodes_and_tls?;
    Some(SessionBackend::Redis(RedisSettings {
        nodes,
        prefix: s.redis_prefix.clone(),
        ca_pem,
        timeout: timeout?,
        local_cache: local_cache?,
        pending_budget: DEFAULT_PENDING_BUDGET,
    }))
}

fn check_local_cache(local_cache: Duration, idle: Option<Duration>, c: &mut Collector) {
    if local_cache > MAX_LOCAL_CACHE {
        c.add(
            "sessions.local_cache",
            format!(
                "at most {}: a logout elsewhere must reach this instance within it",
                humantime::format_duration(MAX_LOCAL_CACHE)
            ),
        );
    }
    if let Some(idle) = idle {
        if !local_cache.is_zero() && local_cache >= idle {
            c.add("sessions.local_cache", "must be shorter than sessions.idle_timeout");
        }
    }
}
