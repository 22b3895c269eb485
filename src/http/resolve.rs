//! Which app a request is for: Host header plus the longest base-URL path prefix.

use std::sync::Arc;

use axum::http::{header, HeaderMap};

use crate::config::{App, Settings};

/// The app and the path below its base (`/saml2/kennisnet/acs`).
pub fn app_for<'a>(settings: &'a Settings, headers: &HeaderMap, path: &'a str) -> Option<(&'a Arc<App>, &'a str)> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.trim_end_matches('.'))?;
    let host = strip_default_port(host);
    // Compared without a lowercased copy: this runs for every request.
    settings
        .apps
        .iter()
        .filter(|a| a.host.eq_ignore_ascii_case(host))
        .filter_map(|a| {
            let rest = path.strip_prefix(a.path_prefix.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then_some((a, rest))
        })
        .max_by_key(|(a, _)| a.path_prefix.len())
}

fn strip_default_port(host: &str) -> &str {
    host.strip_suffix(":443")
        .or_else(|| host.strip_suffix(":80"))
        .unwrap_or(host)
}
