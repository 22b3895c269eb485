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

/// Forwarding headers an app might believe, in their folded spelling (lowercase, every
/// character other than a letter or digit as `-`): CGI, Rack, WSGI and PHP fold `_` and `.`
/// into `-` (the Puma CVE-2024-45614 class), so `x_forwarded_for` is `X-Forwarded-For` to
/// them. Any name beginning `x-forwarded-` counts too. From an untrusted peer every spelling
/// is dropped; from a trusted proxy only the canonical spellings pass (a proxy never sends
/// `x_real_ip`; such a header is a client's copy it let through). The bridge sets
/// X-Forwarded-For/-Proto/-Host itself.
const FORWARDING: [&str; 15] = [
    "forwarded",
    "x-real-ip",
    "x-original-url",
    "x-original-uri",
    "x-original-host",
    "x-rewrite-url",
    "true-client-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "client-ip",
    "x-url-scheme",
    "front-end-https",
    "x-host",
    "x-forwarded",
];
const FORWARDED_PREFIX: &str = "x-forwarded-";

/// A byte of a header name folded as CGI-style servers fold it.
fn fold_byte(b: u8) -> u8 {
    if b.is_ascii_alphanumeric() {
        b.to_ascii_lowercase()
    } else {
        b'-'
    }
}

/// Whether `name`, folded, is one of the forwarding headers. Compared in place: this runs
/// for every header of every proxied request.
fn is_forwarding(name: &str) -> bool {
    let folds_to = |ours: &str, n: &[u8]| ours.len() == n.len() && ours.bytes().zip(n).all(|(o, &b)| o == fold_byte(b));
    let bytes = name.as_bytes();
    FORWARDING.iter().any(|ours| folds_to(ours, bytes))
        || (bytes.len() > FORWARDED_PREFIX.len() && folds_to(FORWARDED_PREFIX, &bytes[..FORWARDED_PREFIX.len()]))
}

/// Removes the forwarding headers a peer may not set: every spelling from an untrusted
/// peer, the folded-only spellings (`x_forwarded_for`, `X.Real.IP`) from a trusted one.
fn strip_forwarding(headers: &mut HeaderMap, trusted: bool) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_forwarding(name.as_str()))
        .filter(|name| !trusted || name.as_str().bytes().any(|b| !(b.is_ascii_alphanumeric() || b == b'-')))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(&name);
    }
}

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

pub async fn forward(state: &AppState, app: &App, mut req: Request, peer: SocketAddr) -> Response {
    strip_identity_headers(req.headers_mut(), app);
    let (session_id, identity) = match identity_of(state, app, req.headers()).await {
        // The id is kept only for a WebSocket tunnel, which watches its session.
        Ok(Some((id, identity))) => (is_upgrade(req.headers()).then(|| id.to_string()), identity),
        Ok(None) => return login_required(app, &req),
        Err(e) => return e.into_response(),
    };
    let started = std::time::Instant::now();
    let response = match proxy(state, app, req, peer, &identity, session_id).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if let Some(stats) = state.proxy_stats.get(&app.name) {
        stats.record(response.status().as_u16(), started.elapsed());
    }
    response
}

/// The session id and identity headers of this browser's valid session for `app`, or `None`
/// without one. Headers made earlier for the session are sent again while their token is
/// young enough; the session is still looked up (and counted as used) on every request, only
/// not rebuilt. Of several session cookies, only the one valid session counts (see
/// `session::valid_id`).
async fn identity_of<'a>(
    state: &AppState,
    app: &'a App,
    headers: &'a HeaderMap,
) -> Result<Option<(&'a str, Arc<IdentityHeaderValues>)>, LoginError> {
    let unavailable = |e: crate::store::StoreError| LoginError::StoreUnavailable(e.to_string());
    let ids = session::presented_ids(app, headers);
    let (id, checked) = match ids.as_slice() {
        [] => return Ok(None),
        [one] => (*one, false),
        several => match session::valid_id(state, app, several).await {
            Ok(Some(id)) => (id, true),
            Ok(None) => return Ok(None),
            Err(session::SessionChoice::Ambiguous) => return Err(LoginError::SessionCookieAmbiguous),
            Err(session::SessionChoice::Store(e)) => return Err(unavailable(e)),
        },
    };
    let now = chrono::Utc::now().timestamp();
    if app.handoff.token_reuse {
        if let Some(values) = state.identity_headers.fresh(id, now) {
            let alive = checked || state.store.session_is_of(id, &app.name).await.map_err(unavailable)?;
            return Ok(alive.then_some((id, values)));
        }
    }
    let Some(s) = state.store.get_session(id).await.map_err(unavailable)? else {
        return Ok(None);
    };
    if s.app != app.name {
        return Ok(None);
    }
    let values = identity_values(state, app, &s, now)?;
    let values = if app.handoff.token_reuse {
        state
            .identity_headers
            .remember(id, now, app.handoff.token_lifetime, values)
    } else {
        Arc::new(values)
    };
    Ok(Some((id, values)))
}

/// Removes every incoming header that could pass for one of the bridge's identity headers
/// (compared with separators folded, see `HeaderNames::could_pass_for_ours`).
pub fn strip_identity_headers(headers: &mut HeaderMap, app: &App) {
    if !headers
        .keys()
        .any(|name| app.handoff.header_names.could_pass_for_ours(name.as_str()))
    {
        return;
    }
    let spoofed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| app.handoff.header_names.could_pass_for_ours(name.as_str()))
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
    login.set_path(&format!(
        "{}/{}",
        app.saml_path(),
        super::routes::SamlRoute::Login.path()
    ));
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
    session_id: Option<String>,
) -> Result<Response, LoginError> {
    let Some(upstream) = &app.handoff.upstream else {
        return Err(LoginError::Internal("no upstream".into()));
    };
    let client = state
        .upstreams
        .get(&app.name)
        .ok_or_else(|| LoginError::Internal("no upstream client".into()))?;
    let upgrade = is_upgrade(req.headers());
    // What the upstream's Sec-WebSocket-Accept must be (RFC 6455 4.2.2).
    let expected_accept = upgrade
        .then(|| req.headers().get(header::SEC_WEBSOCKET_KEY).map(websocket_accept))
        .flatten();
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

    // The upstream URI: its origin and path prefix, then the request's own path and query.
    let path_and_query = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut target = String::with_capacity(upstream.prefix.len() + path_and_query.len());
    target.push_str(&upstream.prefix);
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

    let sent = tokio::time::timeout(upstream.timeout, client.request(req)).await;
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
        // Without the proof that the upstream read this handshake (a stale or wrong
        // Accept, or none) the bytes after it are not WebSocket frames: no tunnel.
        let accepted = response.headers().get(header::SEC_WEBSOCKET_ACCEPT);
        if expected_accept.is_none() || accepted != expected_accept.as_ref() {
            return Err(LoginError::UpstreamUpgradeInvalid);
        }
        let (Some(client_side), Some(session_id)) = (client_upgrade, session_id) else {
            return Err(LoginError::Internal("an upgrade without its session".into()));
        };
        let upstream_side = hyper::upgrade::on(&mut response);
        let watch = TunnelWatch {
            store: state.store.clone(),
            session_id,
            app: app.name.clone(),
            every: tunnel_check_interval(state.settings.session_idle, state.settings.session_lifetime),
        };
        tokio::spawn(async move {
            if let (Ok(a), Ok(b)) = (client_side.await, upstream_side.await) {
                let (mut a, mut b) = (TokioIo::new(a), TokioIo::new(b));
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
                    () = watch.until_session_ends() => {
                        tracing::info!(app = watch.app, "websocket closed: its session ended");
                    }
                }
                // Dropping both sides closes both connections.
            }
        });
        response.extensions_mut().insert(super::FromUpstream);
        return Ok(response.map(Body::new));
    }
    remove_hop_by_hop(response.headers_mut(), false);
    strip_bridge_set_cookies(response.headers_mut());
    response.extensions_mut().insert(super::FromUpstream);
    Ok(response.map(Body::new))
}

/// `base64(SHA-1(key + GUID))`, the Sec-WebSocket-Accept that answers `key` (RFC 6455).
fn websocket_accept(key: &HeaderValue) -> HeaderValue {
    use base64::Engine;
    let mut hasher = openssl::sha::Sha1::new();
    hasher.update(key.as_bytes());
    hasher.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let encoded = base64::engine::general_purpose::STANDARD.encode(hasher.finish());
    // Base64 is always a valid header value.
    HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// How often an open tunnel asks whether its session still lives: a tenth of the shorter of
/// the idle and absolute lifetimes (so a session's end closes its tunnel within that), at
/// least every minute, at most every 50 ms.
fn tunnel_check_interval(idle: Duration, lifetime: Duration) -> Duration {
    (idle.min(lifetime) / 10).clamp(Duration::from_millis(50), Duration::from_secs(60))
}

/// Watches the session a WebSocket tunnel was opened for. A logout, a Single Logout or the
/// session's expiry ends the session in the store; the next check then closes the tunnel.
/// Each check counts as use of the session (an open tunnel is in use), so the absolute
/// lifetime, not the idle time, ends a tunnel that is only open.
struct TunnelWatch {
    store: Arc<dyn crate::store::LoginStateStore>,
    session_id: String,
    app: String,
    every: Duration,
}

impl TunnelWatch {
    async fn until_session_ends(&self) {
        loop {
            tokio::time::sleep(self.every).await;
            match self.store.session_is_of(&self.session_id, &self.app).await {
                Ok(true) => {}
                // Fail closed: a store that cannot say the session lives ends the tunnel.
                Ok(false) | Err(_) => return,
            }
        }
    }
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
        // Without a key the upstream's answer could not be checked.
        && headers.get(header::SEC_WEBSOCKET_KEY).is_some()
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
/// forwarding headers (`Forwarded`, `X-Real-IP`, ...) only pass from trusted proxies, and
/// only in their canonical spelling (see [`FORWARDING`]).
fn set_forwarded(
    headers: &mut HeaderMap,
    app: &App,
    peer: SocketAddr,
    trusted: bool,
    arrived_host: Option<HeaderValue>,
) {
    strip_forwarding(headers, trusted);
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
    let name = name
        .strip_prefix("__Host-")
        .or_else(|| name.strip_prefix("__Secure-"))
        .unwrap_or(name);
    name.starts_with("eb_session_") || name.starts_with("eb_login_") || name.starts_with("eb_link_")
}

/// The name of a `name=value` cookie pair as a browser would send it back. A pair without a
/// name (`=eb_session_x=v`, or no `=` at all) is a nameless cookie, which browsers send as
/// its bare value: `eb_session_x=v`. So its name is what its value begins with.
fn cookie_name_as_sent(pair: &str) -> &str {
    let pair = pair.trim();
    let unnamed = pair.strip_prefix('=').unwrap_or(pair);
    unnamed.split('=').next().unwrap_or("")
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
        .filter(|pair| !pair.is_empty() && !is_bridge_cookie(cookie_name_as_sent(pair)));
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

/// An upstream may not set the bridge's cookies (that would plant a session id: fixation),
/// nor nameless cookies, which browsers send back as their bare value and so can pass for
/// any cookie, `__Host-` ones included. A Set-Cookie that is not text goes too.
fn strip_bridge_set_cookies(headers: &mut HeaderMap) {
    let sets_bridge_cookie = |v: &HeaderValue| -> bool {
        let Ok(text) = v.to_str() else {
            return true;
        };
        let pair = text.split(';').next().unwrap_or("").trim();
        let nameless = pair.split_once('=').is_none_or(|(name, _)| name.trim().is_empty());
        nameless || is_bridge_cookie(cookie_name_as_sent(pair))
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
    let claims = crate::handoff::claims::build(
        &app.name,
        app.handoff.token_lifetime,
        state.settings.public_base_url.as_str(),
        &s.identity,
        now,
    );
    let token = state
        .settings
        .jwt_keys
        .sign(&claims)
        .map_err(|e| LoginError::Internal(format!("signing the token header: {e}")))?;
    let token =
        HeaderValue::from_str(&token).map_err(|_| LoginError::Internal("the token is not a header value".into()))?;
    Ok(IdentityHeaderValues::of(&s.identity, token)?)
}

fn insert_identity(app: &App, values: &IdentityHeaderValues, headers: &mut HeaderMap) {
    for (name, value) in values.named(&app.handoff.header_names) {
        if let Some(value) = value {
            headers.insert(name.clone(), value.clone());
        }
    }
}
