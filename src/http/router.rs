//! The router: the global routes, then each request for an app by Host and base path to its
//! SAML route or its upstream, with the checks every request passes first (one Host, a path
//! an upstream cannot read differently, the rate limit of the routes that do work). Around
//! it all: the error layer (pages, log lines and counts of failures) and the headers every
//! answer of the bridge carries.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::errors::{self, LoginAttempt, LoginError};
use super::global;
use super::pages::Lang;
use super::routes::{self, AppRoute, GlobalRoute, SamlRoute};
use super::{AppState, Shared, MAX_BODY_BYTES};
use crate::config::App;

/// The bridge's routes; `extra` (the demo's IdP and sample app) is merged in when given.
pub fn router(state: Arc<Shared>, extra: Option<Router>) -> Router {
    let mut router = Router::new();
    for route in GlobalRoute::ALL {
        router = match route {
            GlobalRoute::Healthz => router.route(route.path(), get(global::healthz)),
            GlobalRoute::Readyz => router.route(route.path(), get(global::readyz)),
            GlobalRoute::Metrics => router.route(route.path(), get(global::metrics)),
            GlobalRoute::Jwks => router.route(route.path(), get(global::jwks)),
            GlobalRoute::OidcDiscovery => router.route(route.path(), get(super::oidc::discovery)),
            GlobalRoute::OidcAuthorize => {
                router.route(route.path(), get(super::oidc::authorize).post(super::oidc::authorize))
            }
            GlobalRoute::OidcToken => router.route(route.path(), post(super::oidc::token)),
            GlobalRoute::OidcUserinfo => {
                router.route(route.path(), get(super::oidc::userinfo).post(super::oidc::userinfo))
            }
            GlobalRoute::OidcLogout => router.route(
                route.path(),
                get(super::oidc_logout::logout).post(super::oidc_logout::logout),
            ),
        };
    }
    let router = router.fallback(dispatch).with_state(state.clone());
    let router = match extra {
        Some(extra) => router.merge(extra),
        None => router,
    };
    let layer = errors::ErrorLayer {
        metrics: state.current().metrics.clone(),
        shared: Some(state.clone()),
    };
    router
        .layer(axum::middleware::from_fn_with_state(layer, errors::error_layer))
        .layer(axum::middleware::map_response_with_state(state, baseline_headers))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(super::request_id::request_span))
}

/// Marks a response that came from an app's upstream (headers mode): its headers are the
/// app's own, and the bridge adds none of its page headers to it.
#[derive(Debug, Clone, Copy)]
pub struct FromUpstream;

/// What every answer of the bridge itself carries, whatever route made it (pages set their
/// own CSP; redirects, JSON, metadata and health checks get these too): no sniffing, no
/// framing, no referrer (login redirects and hand-off pages carry tokens in URLs and forms),
/// and HSTS when the bridge is served over https.
async fn baseline_headers(State(shared): State<Arc<Shared>>, mut response: Response) -> Response {
    if response.extensions().get::<FromUpstream>().is_some() {
        return response;
    }
    let https = shared.tls().is_some() || shared.current().settings.public_base_url.scheme() == "https";
    let headers = response.headers_mut();
    let defaults = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, header::HeaderValue::from_static(value));
        }
    }
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            header::HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// Every request that is not a global route: for an app, or an unknown address.
async fn dispatch(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    // One snapshot of the config for the whole request, whatever a reload does meanwhile.
    let state = shared.current();
    // The bridge routes on the Host header; an upstream (WSGI, Rack) may read another of
    // several. RFC 9112 3.2: a request without exactly one Host is a 400.
    let hosts = req.headers().get_all(header::HOST).iter().count();
    if hosts != 1 {
        return LoginError::HostHeaderInvalid(hosts).into_response();
    }
    let path = req.uri().path();
    if !routes::safe_path(path) {
        return LoginError::PathNotAllowed.into_response();
    }
    let Some((app, rest)) = super::resolve::app_for(&state.settings, req.headers(), path) else {
        return LoginError::UnknownApp.into_response();
    };
    let app = app.clone();
    let route = AppRoute::parse(rest, &app.federation.name);
    let mut response = for_app(&state, &app, route, peer, req).await;
    errors::name_app(&mut response, &app);
    response
}

/// A request for `app` on `route`.
async fn for_app(state: &Arc<AppState>, app: &Arc<App>, route: AppRoute, peer: SocketAddr, req: Request) -> Response {
    let route = match route {
        AppRoute::App if app.handoff.upstream.is_some() => {
            let allow_path_parameters = app.handoff.upstream.as_ref().is_some_and(|u| u.allow_path_parameters);
            if !allow_path_parameters && routes::has_path_parameters(req.uri().path()) {
                return LoginError::PathParametersNotAllowed.into_response();
            }
            return super::proxy::forward(state, app, req, peer).await;
        }
        AppRoute::App | AppRoute::UnknownSaml => return LoginError::UnknownApp.into_response(),
        AppRoute::Saml(route) => route,
    };
    // The page language, for the handlers that render pages themselves (not the proxy's).
    let lang = Lang::from_headers(req.headers());
    if route.rate_limited() {
        let client = super::rate_limit::client_address(peer.ip(), req.headers(), &state.settings.trusted_proxies);
        if let Err(retry_after) = state.rate_limiter.check(client) {
            let mut response = LoginError::RateLimited {
                address: client.ip.to_string(),
                retry_after,
            }
            .into_response();
            if route == SamlRoute::Acs {
                attempt_of(app, &mut response);
            }
            return response;
        }
    }
    let head_as_get = req.method() == axum::http::Method::HEAD && route.answers_head();
    if req.method() != route.method() && !head_as_get {
        return if route.refuses_other_methods() {
            let mut response = LoginError::MethodNotAllowed {
                method: req.method().to_string(),
                route,
            }
            .into_response();
            if let Ok(allow) = axum::http::HeaderValue::from_str(route.method().as_str()) {
                response.headers_mut().insert(axum::http::header::ALLOW, allow);
            }
            response
        } else {
            LoginError::UnknownApp.into_response()
        };
    }
    match route {
        SamlRoute::Metadata => super::saml_routes::metadata(state, app),
        SamlRoute::Logo => super::saml_routes::logo(app, req.headers()),
        SamlRoute::Login => {
            let target = query_param(&req, "target");
            super::saml_routes::login(state, app, target).await
        }
        SamlRoute::Acs => {
            let started = std::time::Instant::now();
            let headers = req.headers().clone();
            let mut response = match axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await {
                Ok(body) => super::acs::acs(state, app, &headers, body, lang).await,
                Err(_) => LoginError::BadRequest("body too large or unreadable").into_response(),
            };
            state.metrics.acs_duration.observe(started.elapsed());
            attempt_of(app, &mut response);
            response
        }
        SamlRoute::LinkCompletion if app.identity.linking.is_some() => {
            let token = query_param(&req, "link_response");
            let mut response = super::link_complete::complete(state, app, req.headers(), token, lang).await;
            attempt_of(app, &mut response);
            response
        }
        SamlRoute::LinkCompletion => LoginError::UnknownApp.into_response(),
        SamlRoute::Logout => super::logout::logout(state, app, req.headers(), lang).await,
        SamlRoute::Sls => {
            let query = req.uri().query().unwrap_or("").to_string();
            super::logout::sls(state, app, &query, lang).await
        }
    }
}

/// Marks `response` as the end of a login attempt of `app`, counted by the error layer.
fn attempt_of(app: &App, response: &mut Response) {
    response.extensions_mut().insert(LoginAttempt { app: app.name.clone() });
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
    use axum::http::Method;

    #[test]
    fn only_the_acs_takes_a_post() {
        for route in SamlRoute::ALL {
            let expected = if route == SamlRoute::Acs {
                Method::POST
            } else {
                Method::GET
            };
            assert_eq!(route.method(), expected, "{route:?}");
        }
    }
}
