//! The per-app routes under `{base}/saml2/{federation}/`: metadata, login (its use case is
//! `login::start`); the ACS, link completion and logout live in their own modules.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::errors::LoginError;
use super::pages::Lang;
use super::{AppState, MAX_BODY_BYTES};
use crate::config::App;
use crate::login;

pub async fn dispatch(
    State(shared): State<Arc<super::Shared>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    req: Request,
) -> Response {
    // One snapshot of the config for the whole request, whatever a reload does meanwhile.
    let state = shared.current();
    let response = route(&state, peer, req).await;
    if let Some(code) = response.extensions().get::<super::errors::ErrorCode>() {
        match code.0 {
            "store_unavailable" | "store_full" => state.metrics.store_error("state"),
            "link_store_unavailable" => state.metrics.store_error("links"),
            _ => {}
        }
    }
    response
}

async fn route(state: &Arc<AppState>, peer: std::net::SocketAddr, req: Request) -> Response {
    let lang = Lang::from_headers(req.headers());
    // The bridge routes on the Host header; an upstream (WSGI, Rack) may read another of
    // several. RFC 9112 3.2: a request without exactly one Host is a 400.
    let hosts = req.headers().get_all(header::HOST).iter().count();
    if hosts != 1 {
        return LoginError::HostHeaderInvalid(hosts).respond(lang, None);
    }
    let path = req.uri().path();
    if !safe_path(path) {
        return LoginError::PathNotAllowed.respond(lang, None);
    }
    let Some((app, rest)) = super::resolve::app_for(&state.settings, req.headers(), path) else {
        return LoginError::UnknownApp.respond(lang, None);
    };
    let app = app.clone();
    let route = saml_route(rest, &app.federation.name);
    if route.is_none() && app.upstream.is_some() && !rest.starts_with("/saml2/") {
        if !app.allow_path_parameters && has_path_parameters(path) {
            return LoginError::PathParametersNotAllowed.respond(lang, Some(&app.display_name));
        }
        return super::proxy::forward(state, &app, req, peer, lang).await;
    }
    // The routes that make the bridge sign, verify or store something, per client address.
    if matches!(route, Some("login" | "acs" | "link/complete" | "logout" | "sls")) {
        let client = super::rate_limit::client_address(peer.ip(), req.headers(), &state.settings.trusted_proxies);
        if let Err(retry_after) = state.rate_limiter.check(client) {
            let refused = LoginError::RateLimited {
                address: client.ip.to_string(),
                retry_after,
            };
            let response = refused.respond(lang, Some(&app.display_name));
            if route == Some("acs") {
                count_login(state, &app, &response);
            }
            return response;
        }
    }
    match (req.method().clone(), route) {
        (Method::GET, Some("metadata")) => metadata(state, &app),
        (Method::GET, Some("login")) => {
            let target = query_param(&req, "target");
            login(state, &app, target, lang).await
        }
        (Method::POST, Some("acs")) => {
            let started = std::time::Instant::now();
            let headers = req.headers().clone();
            let response = match axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await {
                Ok(body) => super::acs::acs(state, &app, &headers, body, lang).await,
                Err(_) => LoginError::BadRequest("body too large or unreadable").respond(lang, Some(&app.display_name)),
            };
            state.metrics.acs_duration.observe(started.elapsed());
            count_login(state, &app, &response);
            response
        }
        (Method::GET, Some("link/complete")) if app.linking.is_some() => {
            let token = query_param(&req, "link_response");
            let response = super::link_complete::complete(state, &app, req.headers(), token, lang).await;
            count_login(state, &app, &response);
            response
        }
        (Method::GET, Some("logout")) => super::logout::logout(state, &app, req.headers(), lang).await,
        (Method::GET, Some("sls")) => {
            let query = req.uri().query().unwrap_or("").to_string();
            super::logout::sls(state, &app, &query, lang).await
        }
        (_, Some("metadata" | "login" | "acs" | "logout" | "sls")) => {
            (StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n").into_response()
        }
        _ => LoginError::UnknownApp.respond(lang, Some(&app.display_name)),
    }
}

/// Counts a login's outcome, and a store failure, from the response it ended in.
fn count_login(state: &AppState, app: &App, response: &Response) {
    match response.extensions().get::<super::errors::ErrorCode>() {
        Some(code) => state.metrics.login(&app.name, "rejected", code.0),
        None if response.extensions().get::<super::acs::LinkingStarted>().is_some() => {
            state.metrics.login(&app.name, "linking", "")
        }
        None => state.metrics.login(&app.name, "ok", ""),
    }
}

fn metadata(state: &AppState, app: &App) -> Response {
    match state.rendered.sp_metadata.get(&app.name) {
        Some(Ok(xml)) => ([(header::CONTENT_TYPE, "application/samlmetadata+xml")], xml.clone()).into_response(),
        Some(Err(e)) => LoginError::Internal(format!("SP metadata: {e}")).respond(Lang::En, Some(&app.display_name)),
        None => LoginError::UnknownApp.respond(Lang::En, Some(&app.display_name)),
    }
}

/// The start of a login: [`login::start`], then the redirect to the IdP with the login cookie.
async fn login(state: &AppState, app: &App, target: Option<String>, lang: Lang) -> Response {
    let started = match login::start(super::use_case::services(state), app, target).await {
        Ok(started) => started,
        Err(e) => return LoginError::from(e).respond(lang, Some(&app.display_name)),
    };
    let mut response = (StatusCode::FOUND, [(header::LOCATION, started.location)]).into_response();
    super::use_case::apply_cookies(app, &mut response, &[started.cookie]);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The SAML route below `/saml2/{federation}/` (`""` for one that does not exist), or `None`
/// when the path is not under it. Known routes come back as static names, so the request can
/// move on without a copy of its path.
fn saml_route(rest: &str, federation: &str) -> Option<&'static str> {
    let route = rest
        .strip_prefix("/saml2/")?
        .strip_prefix(federation)?
        .strip_prefix('/')?;
    const ROUTES: [&str; 6] = ["metadata", "login", "acs", "link/complete", "logout", "sls"];
    Some(ROUTES.into_iter().find(|r| *r == route).unwrap_or(""))
}

/// Paths with dot segments (plain or percent-encoded), encoded slashes or backslashes are
/// refused before anything routes on them: an upstream that normalises them would otherwise
/// serve something outside the app the session was checked for. Runs on every request, so it
/// reads the bytes as they are rather than a lowercased copy.
fn safe_path(path: &str) -> bool {
    if path.contains('\\') {
        return false;
    }
    let encoded_forbidden = path.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1], w[2].to_ascii_lowercase()),
                (b'2', b'f') | (b'5', b'c') | (b'0', b'0')
            )
    });
    !encoded_forbidden && !path.split('/').any(is_dot_segment)
}

/// `.` or `..`, each dot possibly written `%2e` (any case), with or without path parameters:
/// Tomcat, Jetty and other servlet containers drop everything from a `;` (or a decoded
/// `%3b`) to the end of a segment before they normalise, so `..;x` is `..` to them.
fn is_dot_segment(segment: &str) -> bool {
    let (mut rest, mut dots) = (before_parameters(segment), 0);
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            rest = after;
        } else if rest.len() >= 3 && rest.is_char_boundary(3) && rest[..3].eq_ignore_ascii_case("%2e") {
            rest = &rest[3..];
        } else {
            return false;
        }
        dots += 1;
        if dots > 2 {
            return false;
        }
    }
    dots > 0
}

/// The part of a segment before its first `;`, raw or percent-encoded.
fn before_parameters(segment: &str) -> &str {
    let bytes = segment.as_bytes();
    let end = (0..bytes.len())
        .find(|&i| {
            bytes[i] == b';'
                || (bytes[i] == b'%'
                    && bytes.get(i + 1) == Some(&b'3')
                    && matches!(bytes.get(i + 2), Some(b'b' | b'B')))
        })
        .unwrap_or(bytes.len());
    // `end` is at an ASCII byte or the end, so a char boundary.
    &segment[..end]
}

/// Whether `path` has a path parameter (`;`, raw or percent-encoded) in any segment.
fn has_path_parameters(path: &str) -> bool {
    path.split('/')
        .any(|segment| before_parameters(segment).len() != segment.len())
}

fn query_param(req: &Request, name: &str) -> Option<String> {
    let query = req.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_and_encoded_separators_are_refused_in_any_spelling() {
        for bad in [
            "/app/../admin",
            "/app/./x",
            "/app/%2e%2E/admin",
            "/app/.%2e",
            "/app/%2E",
            "/app/a%2Fb",
            "/app/a%2fb",
            "/app/a%5Cb",
            "/app/a\\b",
            "/app/a%00",
            "/..",
            "/app/..;/admin/x",
            "/app/.;/x",
            "/app/%2e%2e;/admin",
            "/app/..%3b/admin",
            "/app/..%3B",
            "/app/.%2E;jsessionid=1/x",
            "/app/..;",
        ] {
            assert!(!safe_path(bad), "{bad}");
        }
        for good in [
            "/",
            "/app/echo",
            "/app/.well-known/x",
            "/app/...",
            "/app/a.b",
            "/app/%2e%2e%2e",
            "/app/é/%41",
            "/app/a;b",
            "/app/...;x",
            "/app/x.;y",
        ] {
            assert!(safe_path(good), "{good}");
        }
    }

    #[test]
    fn path_parameters_are_found_raw_and_encoded() {
        for with in ["/a;b", "/a/b;", "/a%3bb/c", "/a%3B", "/;"] {
            assert!(has_path_parameters(with), "{with}");
        }
        for without in ["/", "/a/b", "/a%3", "/a%3c", "/a%2b"] {
            assert!(!has_path_parameters(without), "{without}");
        }
    }

    #[test]
    fn saml_routes_are_recognised_only_under_their_federation() {
        assert_eq!(saml_route("/saml2/kennisnet/acs", "kennisnet"), Some("acs"));
        assert_eq!(
            saml_route("/saml2/kennisnet/link/complete", "kennisnet"),
            Some("link/complete")
        );
        assert_eq!(saml_route("/saml2/kennisnet/nope", "kennisnet"), Some(""));
        assert_eq!(saml_route("/saml2/kennisnetx/acs", "kennisnet"), None);
        assert_eq!(saml_route("/saml2/other/acs", "kennisnet"), None);
        assert_eq!(saml_route("/echo", "kennisnet"), None);
    }
}
