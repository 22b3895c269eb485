//! The login cookie: binds a pending login to the browser that started it. It must survive
//! the cross-site POST from the IdP back to the ACS, so under https it is SameSite=None;
//! Secure. Over plain http (the demo on loopback) browsers refuse SameSite=None without
//! Secure, so it is Lax there (the dev IdP is same-site).

use axum::http::HeaderMap;

use crate::config::App;

pub const LOGIN_COOKIE_PREFIX: &str = "eb_login_";
pub const LOGIN_COOKIE_MAX_AGE: u64 = 600;

pub fn login_cookie_name(relay_state: &str) -> String {
    format!("{LOGIN_COOKIE_PREFIX}{relay_state}")
}

pub fn set_login_cookie(app: &App, relay_state: &str, nonce: &str) -> String {
    format!(
        "{}={nonce}; Path={}/; Max-Age={LOGIN_COOKIE_MAX_AGE}; HttpOnly; {}",
        login_cookie_name(relay_state),
        app.saml_path(),
        if app.secure {
            "Secure; SameSite=None"
        } else {
            "SameSite=Lax"
        }
    )
}

pub fn clear_login_cookie(app: &App, relay_state: &str) -> String {
    format!(
        "{}=; Path={}/; Max-Age=0; HttpOnly; {}",
        login_cookie_name(relay_state),
        app.saml_path(),
        if app.secure {
            "Secure; SameSite=None"
        } else {
            "SameSite=Lax"
        }
    )
}

pub const LINK_COOKIE_PREFIX: &str = "eb_link_";

pub fn link_cookie_name(jti: &str) -> String {
    format!("{LINK_COOKIE_PREFIX}{jti}")
}

/// The link cookie comes back on a top-level GET from the app's link page, so Lax suffices.
pub fn set_link_cookie(app: &App, jti: &str, nonce: &str) -> String {
    format!(
        "{}={nonce}; Path={}/; Max-Age={LOGIN_COOKIE_MAX_AGE}; HttpOnly; SameSite=Lax{}",
        link_cookie_name(jti),
        app.saml_path(),
        if app.secure { "; Secure" } else { "" }
    )
}

pub fn clear_link_cookie(app: &App, jti: &str) -> String {
    format!(
        "{}=; Path={}/; Max-Age=0; HttpOnly; SameSite=Lax{}",
        link_cookie_name(jti),
        app.saml_path(),
        if app.secure { "; Secure" } else { "" }
    )
}

/// The value of cookie `name` from the request's Cookie headers.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The names of the request's cookies that start with `prefix`.
pub fn names_with_prefix<'a>(headers: &'a HeaderMap, prefix: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('=').map(|(k, _)| k))
        .filter(move |k| k.starts_with(prefix) && k.len() <= prefix.len() + 64)
}

/// Compares secrets in constant time.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a.as_bytes(), b.as_bytes())
}
