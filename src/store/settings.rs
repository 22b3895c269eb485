//! What the stores are opened with: where login state lives (memory or Redis) and where
//! account links live. `config` builds these from `[sessions]` and `[links]`; the store
//! modules read nothing else.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

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

/// A URL as it may be shown: without its password.
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

/// Where account links live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinksTarget {
    Sqlite(PathBuf),
    Postgres(String),
}
