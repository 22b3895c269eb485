//! Where a login may send the user afterwards. Targets are parsed with the WHATWG URL rules
//! browsers use (the `url` crate), resolved against the app's base URL, and accepted only
//! when their origin is exactly the app's or an `allowed_targets` origin.

use url::Url;

use crate::config::App;

pub const MAX_TARGET_LEN: usize = 2048;

/// The absolute target URL, or `None` when it may not be used.
pub fn check(app: &App, raw: &str) -> Option<String> {
    if raw.is_empty() || raw.len() > MAX_TARGET_LEN {
        return None;
    }
    // Browsers silently drop tabs/newlines and trim control characters and spaces; an
    // attacker uses exactly that to smuggle `//evil`. Such targets are refused outright.
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return None;
    }
    // A scheme must be followed by `//`: `http:evil`, `javascript:` and `data:` are refused
    // even where a browser would resolve them to something harmless.
    if let Some((scheme, rest)) = raw.split_once(':') {
        let looks_like_scheme = !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if looks_like_scheme && !rest.starts_with("//") {
            return None;
        }
    }
    let url = app.base_url.join(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let origin = url.origin();
    app.allowed_origins.contains(&origin).then(|| url.to_string())
}

/// Accepts a URL that must equal an allowed origin (used for IdP-initiated RelayState).
pub fn check_absolute(app: &App, raw: &str) -> Option<String> {
    Url::parse(raw).ok()?;
    check(app, raw)
}
