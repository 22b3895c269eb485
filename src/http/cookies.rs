//! The login cookie: binds a pending login to the browser that started it. It must survive
//! the cross-site POST from the IdP back to the ACS, so under https it is SameSite=None;
//! Secure. Over plain http (the demo on loopback) browsers refuse SameSite=None without
//! Secure, so it is Lax there (the dev IdP is same-site).

use axum::http::HeaderMap;

use crate::config::App;

pub const LOGIN_COOKIE_PREFIX: &str = "eb_login_";
pub const LINK_COOKIE_PREFIX: &str = "eb_link_";
pub const LOGIN_COOKIE_MAX_AGE: u64 = 600;

/// Under https the cookies carry the `__Host-` prefix: the browser then refuses them from any
/// other host (a sibling subdomain cannot plant one) and they must be Secure with Path=/.
fn name(app: &App, prefix: &str, id: &str) -> String {
    if app.secure {
        format!("__Host-{prefix}{id}")
    } else {
        format!("{prefix}{id}")
    }
}

fn attributes(app: &App, same_site: &str, max_age: u64) -> String {
    if app.secure {
        format!("Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite={same_site}")
    } else {
        // Plain http (the demo on loopback): browsers refuse SameSite=None without Secure.
        format!("Path={}/; Max-Age={max_age}; HttpOnly; SameSite=Lax", app.saml_path())
    }
}

/// `name=value` with the attributes of `app`'s cookies (an empty value with Max-Age=0 clears).
fn cookie(app: &App, prefix: &str, id: &str, value: &str, same_site: &str, max_age: u64) -> String {
    format!(
        "{}={value}; {}",
        name(app, prefix, id),
        attributes(app, same_site, max_age)
    )
}

pub fn login_cookie_name(app: &App, relay_state: &str) -> String {
    name(app, LOGIN_COOKIE_PREFIX, relay_state)
}

/// The login cookie must survive the cross-site POST from the IdP: SameSite=None under https.
pub fn set_login_cookie(app: &App, relay_state: &str, nonce: &str) -> String {
    cookie(
        app,
        LOGIN_COOKIE_PREFIX,
        relay_state,
        nonce,
        "None",
        LOGIN_COOKIE_MAX_AGE,
    )
}

pub fn clear_login_cookie(app: &App, relay_state: &str) -> String {
    cookie(app, LOGIN_COOKIE_PREFIX, relay_state, "", "None", 0)
}

pub fn link_cookie_name(app: &App, jti: &str) -> String {
    name(app, LINK_COOKIE_PREFIX, jti)
}

/// The link cookie comes back on a top-level GET from the app's link page: Lax suffices.
pub fn set_link_cookie(app: &App, jti: &str, nonce: &str) -> String {
    cookie(app, LINK_COOKIE_PREFIX, jti, nonce, "Lax", LOGIN_COOKIE_MAX_AGE)
}

pub fn clear_link_cookie(app: &App, jti: &str) -> String {
    cookie(app, LINK_COOKIE_PREFIX, jti, "", "Lax", 0)
}

/// The ids of this app's link cookies in the request, each once (of the pairs
/// [`link_cookie_values`] reads).
pub fn link_cookie_ids<'a>(app: &App, headers: &'a HeaderMap) -> Vec<&'a str> {
    let mut ids: Vec<&str> = Vec::new();
    for (id, _) in link_cookie_values(app, headers) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// Every (link `jti`, value) pair of `app`'s link cookies, in one pass over the Cookie
/// headers (the headers are bounded; this keeps the work per request linear in them), at most
/// `MAX_LINK_COOKIES` pairs: a real browser holds one or two pending links.
pub fn link_cookie_values<'a>(app: &App, headers: &'a HeaderMap) -> Vec<(&'a str, &'a str)> {
    let prefix = name(app, LINK_COOKIE_PREFIX, "");
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter_map(|(k, v)| k.strip_prefix(prefix.as_str()).map(|id| (id, v)))
        .filter(|(id, _)| id.len() <= 64)
        .take(MAX_LINK_COOKIES)
        .collect()
}

/// More link cookies than a browser would hold are not looked at.
pub const MAX_LINK_COOKIES: usize = 32;

/// The value of cookie `name` from the request's Cookie headers (the first of several).
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    get_all(headers, name).next()
}

/// Every value of cookie `name` in the request's Cookie headers, in the order sent. A
/// browser sends several when cookies of one name were set for different paths, or when a
/// nameless cookie (`Set-Cookie: =eb_session_x=...`, which even `__Host-` cannot keep
/// out) serialises as `eb_session_x=...`: the first is not necessarily the bridge's own.
pub fn get_all<'a: 'n, 'n>(headers: &'a HeaderMap, name: &'n str) -> impl Iterator<Item = &'a str> + 'n {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v)
}
