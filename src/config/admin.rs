//! `[admin]` (the support desk's listener: its address and token file), checked into
//! [`AdminSettings`]. Absent: no admin listener.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::parse::resolve;
use super::problems::Collector;
use crate::keys::AdminTokens;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// Where the admin API and pages listen (own port; loopback by default).
    pub listen: String,
    /// The bearer tokens, one `NAME TOKEN` per line.
    pub token_file: String,
    /// `/metrics` on this listener (no token: a scraper on the private network) and no longer
    /// on the public one, where students' browsers reach.
    pub metrics: bool,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            listen: DEFAULT_ADMIN_LISTEN.into(),
            token_file: String::new(),
            metrics: false,
        }
    }
}

pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9091";

/// The admin listener as configured. The tokens are read at load (so `check-config` reports a
/// bad file) and again by the listener whenever the file changes (a revoked token stops
/// working without a reload).
#[derive(Debug, Clone)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    pub token_file: PathBuf,
    pub tokens: AdminTokens,
    /// `admin.metrics`: `/metrics` is served here, and not on the public listener.
    pub metrics: bool,
}

impl PartialEq for AdminSettings {
    fn eq(&self, other: &Self) -> bool {
        self.listen == other.listen && self.token_file == other.token_file
    }
}

pub(super) fn build_admin(
    s: &AdminSection,
    server_listen: Option<SocketAddr>,
    base: &std::path::Path,
    c: &mut Collector<'_>,
    warnings: &mut Vec<String>,
) -> Option<AdminSettings> {
    let listen = match s.listen.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(e) => {
            c.add("admin.listen", format!("{:?} is not an address:port: {e}", s.listen));
            return None;
        }
    };
    if server_listen == Some(listen) {
        c.add(
            "admin.listen",
            "must differ from server.listen: nothing of the admin listener is served on the public port",
        );
        return None;
    }
    if !listen.ip().is_loopback() {
        warnings.push(format!(
            "admin.listen: {listen} is not a loopback address, and the admin listener speaks plain http: \
             reach it through an SSH tunnel or a TLS-terminating proxy, never over an open network"
        ));
    }
    if s.token_file.trim().is_empty() {
        c.add(
            "admin.token_file",
            "missing required key: the file of admin bearer tokens (`NAME TOKEN` per line)",
        );
        return None;
    }
    let token_file = resolve(base, &s.token_file);
    let tokens = match AdminTokens::read(&token_file) {
        Ok(t) => t,
        Err(e) => {
            c.add("admin.token_file", e);
            return None;
        }
    };
    if let Some(mode) = crate::keys::readable_by_others(&token_file) {
        warnings.push(format!(
            "admin.token_file: {} can be read or written by other users (mode {mode:o}) and holds the admin tokens; chmod 600 it",
            token_file.display()
        ));
    }
    Some(AdminSettings {
        listen,
        token_file,
        tokens,
        metrics: s.metrics,
    })
}
