//! Headers mode: the bridge reverse-proxies the app. Spoofed identity headers are removed
//! from every request (in any case, with `_` for `-`, with or without a session, also on
//! WebSocket upgrades); with a valid session the bridge adds its own. Bodies stream both
//! ways; WebSocket upgrades are spliced through; upstream failures are 502/504 pages.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::errors::LoginError;
use super::pages::Lang;
use super::{session, AppState};
use crate::config::App;
use crate::handoff::identity_headers::IdentityHeaderValues;
use crate::store::AppSession;

pub type UpstreamClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>;

/// One pooled HTTP/1.1 client per app: keep-alive to the upstream, its own connect timeout,
/// and for https upstreams rustls with the system roots plus the app's `upstream_ca`.
pub fn client(connect_timeout: Duration, extra_ca: &[Vec<u8>]) -> Result<UpstreamClient, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A broken system certificate is skipped, not fatal.
        let _ = roots.add(cert);
    }
    for der in extra_ca {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| format!("upstream_ca: {e}"))?;
    }
    let tls =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .build(connector))
}

/// Headers a `Connection` list may not remove.
const PROTECTED: [&str; 4] = ["host", "content-length", "cookie", "forwarded"];

/// Forwarding headers an app might believe; from an untrusted peer they are dropped (the
/// bridge sets X-Forwarded-For/-Proto/-Host itself).
const FOREIGN_FORWARDING: [&str; 7] = [
    "forwarded",
    "x-real-ip",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "x-original-url",
    "x-rewrite-url",
];

/// Headers that describe one hop, never forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub async fn forward(state: &AppState, app: &App, mut req: Request, peer: SocketAddr, lang: Lang) -> Response {
    strip_identity_headers(req.headers_mut(), app);
    let identity = match identity_of(state, app, req.headers()).await {
        Ok(Some(identity)) => identity,
        Ok(None) => return login_required(app, &req),
        Err(e) => return e.respond(lang, Some(&app.display_name)),
    };
    let started = std::time::Instant::now();
    let response = match proxy(state, app, req, peer, &identity).await {
        Ok(r) => r,
        Err(e) => e.respond(lang, Some(&app.display_name)),
    };
    if let Some(stats) = state.proxy_stats.get(&app.name) {
        stats.record(response.status().as_u16(), started.elapsed());
    }
    response
}

/// The identity headers of this browser's valid session for `app`, or `None` without one.
/// Headers made earlier for the session are sent again while their token is young enough;
/// the session is still looked up (and counted as used) on every request, only not rebuilt.
async fn identity_of(
    state: &AppState,
    app: &App,
    headers: &HeaderMap,
) -> Result<Option<Arc<IdentityHeaderValues>>, LoginError> {
    let Some(id) = session::presented_id(app, headers) else {
        return Ok(None);
    };
    let now = chrono::Utc::now().timestamp();
    let unavailable = |e: crate::store::StoreError| LoginError::StoreUnavailable(e.to_string());
    if app.token_reuse {
        if let Some(values) = state.identity_headers.fresh(id, now) {
            let alive = state.store.session_is_of(id, &app.name).await.map_err(unavailable)?;
            return Ok(alive.then_some(values));
        }
    }
    let Some(s) = state.store.get_session(id).await.map_err(unavailable)? else {
        return Ok(None);
    };
    if s.app != app.name {
        return Ok(None);
    }
    let values = identity_values(state, app, &s, now)?;
    Ok(Some(if app.token_reuse {
        state.identity_headers.remember(id, now, app.token_lifetime, values)
    } else {
        Arc::new(values)
    }))
}

/// Removes every incoming header that could pass for one of the bridge's identity headers
/// (compared with separators folded, see `HeaderNames::could_pass_for_ours`).
pub fn strip_identity_headers(headers: &mut HeaderMap, app: &App) {
    if !headers
        .keys()
        .any(|name| app.header_names.could_pass_for_ours(name.as_str()))
    {
        return;
    }
    let spoofed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| app.header_names.could_pass_for_ours(name.as_str()))
        .cloned()
        .collect();
    for name in spoofed {
        headers.remove(&name);
    }
}

/// No session: browsers (GET/HEAD asking for HTML) go to the login with this URL as the
/// target; everything else gets a 401 with a JSON body.
fn login_required(app: &App, req: &Request) -> Response {
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let mut login = app.base_url.clone();
    login.set_path(&format!("{}/login", app.saml_path()));
    if matches!(*req.method(), Method::GET | Method::HEAD) && wants_html {
        let mut target = app.base_url.clone();
        target.set_path(req.uri().path());
        target.set_query(req.uri().query());
        login.query_pairs_mut().append_pair("target", target.as_str());
        return (StatusCode::FOUND, [(header::LOCATION, login.to_string())]).into_response();
    }
    let body = serde_json::json!({"error": "login_required", "login_url": login.to_string()}).to_string();
    (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn proxy(
    state: &AppState,
    app: &App,
    mut req: Request,
    peer: SocketAddr,
    identity: &IdentityHeaderValues,
) -> Result<Response, LoginError> {
    if app.upstream.is_none() {
        return Err(LoginError::Internal("no upstream".into()));
    }
    let client = state
        .upstreams
        .get(&app.name)
        .ok_or_else(|| LoginError::Internal("no upstream client".into()))?;
    let upgrade = is_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

    // The upstream URI: its origin and path prefix, then the request's own path and query.
    let path_and_query = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut target = String::with_capacity(app.upstream_prefix.len() + path_and_query.len());
    target.push_str(&app.upstream_prefix);
    target.push_str(path_and_query);
    let uri = Uri::try_from(target).map_err(|_| LoginError::BadRequest("the request path cannot be forwarded"))?;
    *req.uri_mut() = uri;

    let trusted = state.settings.trusted_proxies.iter().any(|c| c.contains(peer.ip()));
    let headers = req.headers_mut();
    // The Host the request arrived with, taken before a `Connection: host` could remove it.
    let arrived_host = headers.get(header::HOST).cloned();
    remove_hop_by_hop(headers, upgrade);
    set_forwarded(headers, app, peer, trusted, arrived_host);
    strip_bridge_cookies(headers);
    insert_identity(app, identity, headers);

    let sent = tokio::time::timeout(app.upstream_timeout, client.request(req)).await;
    let mut response = match sent {
        Err(_) => return Err(LoginError::UpstreamTimeout),
        Ok(Err(e)) => return Err(LoginError::UpstreamUnavailable(e.to_string())),
        Ok(Ok(r)) => r,
    };
    let upgraded_to_websocket = response
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"));
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if !(upgraded_to_websocket && client_upgrade.is_some()) {
            return Err(LoginError::UpstreamUnavailable(
                "the upstream switched to a protocol that was not asked for".into(),
            ));
        }
        if let Some(client_side) = client_upgrade {
            let upstream_side = hyper::upgrade::on(&mut response);
            tokio::spawn(async move {
                if let (Ok(a), Ok(b)) = (client_side.await, upstream_side.await) {
                    let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(a), &mut TokioIo::new(b)).await;
                }
            });
        }
        response.extensions_mut().insert(super::FromUpstream);
        return Ok(response.map(Body::new));
    }
    remove_hop_by_hop(response.headers_mut(), false);
    strip_bridge_set_cookies(response.headers_mut());
    response.extensions_mut().insert(super::FromUpstream);
    Ok(response.map(Body::new))
}

/// Only WebSocket upgrades are passed through: another protocol (h2c, say) would hand the
/// client a tunnel in which it could send its own identity headers.
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

/// Drops hop-by-hop headers and those named in Connection; an upgrade keeps the two it needs.
fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // HeaderName lowercases; a token that is no header name names nothing to remove.
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().copied().chain(listed.iter().map(HeaderName::as_str)) {
        if keep_upgrade && (name == "connection" || name == "upgrade") {
            continue;
        }
        // `Connection` may not name the headers this proxy's guarantees rest on.
        if PROTECTED.contains(&name) || name.starts_with("x-forwarded-") {
            continue;
        }
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// X-Forwarded-For/-Proto/-Host: kept from trusted proxies, set by the bridge otherwise; other
/// forwarding headers (`Forwarded`, `X-Real-IP`, ...) only pass from trusted proxies.
fn set_forwarded(
    headers: &mut HeaderMap,
    app: &App,
    peer: SocketAddr,
    trusted: bool,
    arrived_host: Option<HeaderValue>,
) {
    if !trusted {
        for name in FOREIGN_FORWARDING {
            headers.remove(name);
        }
    }
    let xff = HeaderName::from_static("x-forwarded-for");
    let proto = HeaderName::from_static("x-forwarded-proto");
    let host = HeaderName::from_static("x-forwarded-host");
    let ip = peer.ip().to_string();
    let chain = match headers.get(&xff).and_then(|v| v.to_str().ok()) {
        Some(prior) if trusted => format!("{prior}, {ip}"),
        _ => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&chain) {
        headers.insert(xff, v);
    }
    if !(trusted && headers.contains_key(&proto)) {
        if let Ok(v) = HeaderValue::from_str(app.base_url.scheme()) {
            headers.insert(proto, v);
        }
    }
    if !(trusted && headers.contains_key(&host)) {
        headers.remove(&host);
        if let Some(v) = arrived_host {
            headers.insert(host, v);
        }
    }
}

/// The bridge's cookies (sessions of every app, login, link) are not any app's business:
/// one upstream must never see a sibling app's session id.
fn is_bridge_cookie(name: &str) -> bool {
    let name = name.trim();
    let name = name.strip_prefix("__Host-").unwrap_or(name);
    name.starts_with("eb_session_") || name.starts_with("eb_login_") || name.starts_with("eb_link_")
}

/// Rewrites the Cookie header(s) into one without the bridge's cookies.
fn strip_bridge_cookies(headers: &mut HeaderMap) {
    let mut kept = String::new();
    let pairs = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && !is_bridge_cookie(pair.split('=').next().unwrap_or("")));
    for pair in pairs {
        if !kept.is_empty() {
            kept.push_str("; ");
        }
        kept.push_str(pair);
    }
    headers.remove(header::COOKIE);
    if !kept.is_empty() {
        if let Ok(v) = HeaderValue::try_from(kept) {
            headers.insert(header::COOKIE, v);
        }
    }
}

/// An upstream may not set the bridge's cookies (that would plant a session id: fixation).
fn strip_bridge_set_cookies(headers: &mut HeaderMap) {
    let sets_bridge_cookie = |v: &HeaderValue| -> bool {
        let name = v.to_str().ok().and_then(|c| c.split('=').next()).unwrap_or("");
        is_bridge_cookie(name)
    };
    if !headers.get_all(header::SET_COOKIE).iter().any(sets_bridge_cookie) {
        return;
    }
    let kept: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| !sets_bridge_cookie(v))
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for v in kept {
        headers.append(header::SET_COOKIE, v);
    }
}

/// The identity headers of a session, its token signed at `now`.
fn identity_values(state: &AppState, app: &App, s: &AppSession, now: i64) -> Result<IdentityHeaderValues, LoginError> {
    let facts = &s.identity.facts;
    let value = |v: &str| HeaderValue::from_bytes(v.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    let claims = crate::handoff::claims::build(app, state.settings.public_base_url.as_str(), &s.identity, now);
    let token = state
        .settings
        .jwt_keys
        .sign(&claims)
        .map_err(|e| LoginError::Internal(format!("signing the token header: {e}")))?;
    Ok(IdentityHeaderValues {
        person_code: value(&s.identity.person_code),
        school: facts.school.as_deref().map(value),
        affiliation: value(&facts.affiliation.join(",")),
        tenant: facts.tenant.as_deref().map(value),
        token: value(&token),
    })
}

fn insert_identity(app: &App, values: &IdentityHeaderValues, headers: &mut HeaderMap) {
    let names = &app.header_names;
    headers.insert(names.person_code.clone(), values.person_code.clone());
    if let Some(school) = &values.school {
        headers.insert(names.school.clone(), school.clone());
    }
    headers.insert(names.affiliation.clone(), values.affiliation.clone());
    if let Some(tenant) = &values.tenant {
        headers.insert(names.tenant.clone(), tenant.clone());
    }
    headers.insert(names.token.clone(), values.token.clone());
}
