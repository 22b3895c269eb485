//! The `[sessions]` and `[links]` sections validated into the stores' own settings: where
//! login state lives (memory or Redis, [`SessionBackend`]) and how long a request may wait for
//! it, and where account links live ([`LinksTarget`]).

use std::path::Path;
use std::time::Duration;

use url::Url;

use super::file::{LinksSection, SessionsSection};
use super::problems::Collector;
use crate::store::{redacted, LinksTarget, RedisNodes, RedisSettings, SessionBackend, DEFAULT_PENDING_BUDGET};

/// The longest `sessions.local_cache` may be: a logout on another instance takes effect here
/// within this time at the latest.
pub const MAX_LOCAL_CACHE: Duration = Duration::from_secs(60);

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
    let local_cache = c.take("sessions.local_cache", super::parse::parse_duration(&s.local_cache));
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
        let path = super::parse::resolve(base, &s.redis_ca);
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

/// Validates `[links]`: SQLite beside the config (by default) or PostgreSQL.
pub(super) fn build_links(links: &LinksSection, base: &Path, c: &mut Collector) -> Option<LinksTarget> {
    match links.store.as_str() {
        "sqlite" => Some(LinksTarget::Sqlite(super::parse::resolve(base, &links.sqlite_path))),
        "postgres"
            if links.postgres_url.starts_with("postgres://") || links.postgres_url.starts_with("postgresql://") =>
        {
            Some(LinksTarget::Postgres(links.postgres_url.clone()))
        }
        "postgres" => {
            c.add(
                "links.postgres_url",
                "required with store = \"postgres\": postgres://user@host/database",
            );
            None
        }
        other => {
            c.add(
                "links.store",
                format!("{other:?} is not one of \"sqlite\", \"postgres\""),
            );
            None
        }
    }
}
