//! The OpenID Connect endpoints on the wire (DESIGN.md "oidc mode"): discovery, authorize,
//! token and userinfo, plus the hand-off at the end of an oidc app's login (a fresh OP
//! session and the code); logout is `oidc_logout`'s. The checks
//! are `handoff::oidc`'s and the use case `login::oidc`'s; this module reads requests and
//! writes answers: pages for what cannot go to a client, OAuth JSON errors where RFC 6749
//! wants them, `Cache-Control: no-store` on everything that carries a token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::errors::{self, LoginError};
use super::use_case::{apply_cookies, services};
use super::{session, AppState, Shared};
use crate::config::App;
use crate::handoff::oidc::authorize::{self, AuthorizeQuery, Refusal};
use crate::handoff::oidc::{client_auth, discovery};
use crate::login::oidc::{self as use_case, Authorized, OidcRefusal, TokenError, TokenForm, UserinfoError};
use crate::login::{LoggedIn, LoginFailure};

/// Largest request body read: a token request (a code, a verifier, a URI and a secret), or a
/// POSTed authorization or logout request (the same parameters as a query, an id_token).
pub(super) const MAX_TOKEN_BODY: usize = 16 * 1024;

pub async fn discovery(State(shared): State<Arc<Shared>>) -> Response {
    let state = shared.current();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        state.rendered.discovery.clone(),
    )
        .into_response()
}

/// The discovery document of `settings`, rendered once when the config is loaded.
pub(super) fn discovery_document(settings: &crate::config::Settings) -> String {
    let extra: Vec<&str> = settings
        .apps
        .iter()
        .filter(|a| a.handoff.oidc.is_some())
        .flat_map(|a| a.identity.claims.iter().map(|(claim, _)| claim.as_str()))
        .collect();
    // RS256 always (Discovery 1.0, 3: it MUST be listed; check-config sees that an app that
    // uses it has its key), ES256 when a key signs it.
    let mut algs = vec![crate::jws::Alg::Rs256.name()];
    if settings.jwt_keys.has(crate::jws::Alg::Es256) {
        algs.push(crate::jws::Alg::Es256.name());
    }
    discovery::document(settings.public_base_url.as_str(), &extra, &algs).to_string()
}

/// A request's parameters (OIDC Core 3.1.2.1, RP-Initiated Logout 2): the query of a GET,
/// the form body of a POST, read up to [`MAX_TOKEN_BODY`]; `None` when the body is larger or
/// unreadable.
pub(super) async fn parameters(parts: &axum::http::request::Parts, body: axum::body::Body) -> Option<String> {
    if parts.method == Method::POST {
        let bytes = axum::body::to_bytes(body, MAX_TOKEN_BODY).await.ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    } else {
        Some(parts.uri.query().unwrap_or("").to_string())
    }
}

/// The client address over the per-address limit of the routes that do work, and when it
/// may come back (seconds).
fn over_limit(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> Option<(super::rate_limit::Client, u64)> {
    let client = super::rate_limit::client_address(peer.ip(), headers, &state.settings.trusted_proxies);
    state
        .rate_limiter
        .check(client)
        .err()
        .map(|retry_after| (client, retry_after))
}

/// The rate limit's answer for the endpoints a client library calls (token, userinfo): JSON
/// with `Retry-After`, which those libraries read, not a page.
fn rate_limited_json(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> Option<Response> {
    over_limit(state, peer, headers).map(|(client, retry_after)| {
        tracing::warn!(code = "rate_limited", address = %client.ip, "token or userinfo request over the rate limit");
        let body =
            json!({"error": "temporarily_unavailable", "error_description": "too many requests; try again later"});
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        no_store(r)
    })
}

/// The per-client-address limit of the routes that do work, as on the SAML routes.
pub(super) fn rate_limited(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> Option<Response> {
    over_limit(state, peer, headers).map(|(client, retry_after)| {
        LoginError::RateLimited {
            address: client.ip.to_string(),
            retry_after,
        }
        .into_response()
    })
}

pub(super) fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => LoginError::Internal("a redirect URL is not a valid header value".into()).into_response(),
    }
}

pub(super) fn page(refusal: OidcRefusal) -> Response {
    LoginError::Login(LoginFailure::Oidc(refusal)).into_response()
}

/// `GET /oidc/authorize`.
pub async fn authorize(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let state = shared.current();
    if let Some(limited) = rate_limited(&state, peer, req.headers()) {
        return limited;
    }
    // OIDC Core 3.1.2.1: GET with the query, or POST with the same as a form.
    let (parts, body) = req.into_parts();
    let Some(raw) = parameters(&parts, body).await else {
        return no_store(page(OidcRefusal::RequestMalformed));
    };
    let query = AuthorizeQuery::parse(&raw);
    let client_id = match authorize::client_id(&query) {
        Ok(id) => id,
        Err(e) => return no_store(page(e.into())),
    };
    let Some((app, client)) = use_case::app_of_client(&state.settings.apps, client_id) else {
        return no_store(page(OidcRefusal::UnknownClient(client_id.to_string())));
    };
    let issuer = state.settings.public_base_url.as_str().trim_end_matches('/');
    let mut response = match authorize::check(&query, client) {
        Err(Refusal::Page(p)) => page(p.into()),
        Err(Refusal::Redirect(r)) => {
            tracing::info!(
                app = app.name,
                error = r.error.as_str(),
                "authorization request refused: {}",
                r.description
            );
            found(&r.location(issuer))
        }
        Ok(checked) => match session::current_with_id(&state, app, &parts.headers).await {
            Err(e) => LoginError::StoreUnavailable(e.to_string()).into_response(),
            Ok(session) => match use_case::authorize(services(&state), app, checked, session).await {
                Ok(Authorized::ToClient(location)) => found(&location),
                Ok(Authorized::Login(started)) => {
                    let mut r = found(&started.location);
                    apply_cookies(app, &mut r, &[started.cookie]);
                    r
                }
                Err(e) => LoginError::from(e).into_response(),
            },
        },
    };
    errors::name_app(&mut response, app);
    no_store(response)
}

/// The hand-off of an oidc app's login (the ACS, link completion): a fresh OP session, then
/// the code to the client whose request started the login, or, for a login that started at
/// an elo link, the target (or the client's landing page), from where the app's own OIDC
/// login finds the session and gets its code at once.
pub(super) async fn after_login(state: &AppState, app: &App, headers: &HeaderMap, logged_in: LoggedIn) -> Response {
    let LoggedIn {
        identity,
        target,
        subject,
        oidc,
        authenticated_at,
    } = logged_in;
    let started = match session::start(state, app, headers, identity.clone(), subject, authenticated_at).await {
        Ok(s) => s,
        Err(e) => return LoginError::StoreUnavailable(e.to_string()).into_response(),
    };
    let location = match oidc {
        Some(authorization) => {
            match use_case::issue_code(
                services(state),
                app,
                &authorization,
                &identity,
                &started.id,
                authenticated_at,
            )
            .await
            {
                Ok(location) => location,
                Err(e) => return LoginError::from(e).into_response(),
            }
        }
        None => target
            .or_else(|| app.handoff.oidc.as_ref().and_then(|c| c.default_landing()))
            .unwrap_or_else(|| app.base_url.to_string()),
    };
    let mut response = found(&location);
    if let Ok(v) = HeaderValue::from_str(&started.set_cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// An OAuth error answer of the token endpoint (RFC 6749 5.2).
fn token_error(e: &TokenError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({"error": e.error(), "error_description": e.description()});
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    if status == StatusCode::UNAUTHORIZED {
        // RFC 6749 5.2: the token endpoint's scheme is the client's, Basic.
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"entree-bridge\""),
        );
    }
    no_store(response)
}

/// The token request's fields, each at most once.
fn token_form(body: &[u8]) -> Result<(TokenForm, Option<String>, Option<String>), TokenError> {
    let mut form = TokenForm::default();
    let (mut client_id, mut client_secret) = (None, None);
    for (k, v) in url::form_urlencoded::parse(body) {
        let slot = match k.as_ref() {
            "grant_type" => &mut form.grant_type,
            "code" => &mut form.code,
            "redirect_uri" => &mut form.redirect_uri,
            "code_verifier" => &mut form.code_verifier,
            "client_id" => &mut client_id,
            "client_secret" => &mut client_secret,
            _ => continue,
        };
        if slot.is_some() {
            return Err(TokenError::InvalidRequest("a parameter is given more than once"));
        }
        *slot = Some(v.into_owned());
    }
    Ok((form, client_id, client_secret))
}

/// `POST /oidc/token`.
pub async fn token(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let state = shared.current();
    if let Some(limited) = rate_limited_json(&state, peer, req.headers()) {
        return limited;
    }
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let form_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        });
    let result = async {
        if !form_type {
            return Err((
                None,
                TokenError::InvalidRequest("the body must be application/x-www-form-urlencoded"),
            ));
        }
        let body = axum::body::to_bytes(req.into_body(), MAX_TOKEN_BODY)
            .await
            .map_err(|_| (None, TokenError::InvalidRequest("the body is too large or unreadable")))?;
        let (form, client_id, client_secret) = token_form(&body).map_err(|e| (None, e))?;
        let presented =
            client_auth::presented(authorization.as_deref(), client_id.as_deref(), client_secret.as_deref())
                .map_err(|e| (None, TokenError::from(e)))?;
        use_case::redeem(services(&state), &state.settings.apps, &presented, &form)
            .await
            .map_err(|e| (Some(presented.client_id.clone()), e))
    }
    .await;
    match result {
        Ok((app, tokens)) => {
            state.metrics.oidc_token(&app.name, "ok");
            let body = json!({
                "access_token": tokens.access_token,
                "token_type": "Bearer",
                "expires_in": tokens.expires_in,
                "id_token": tokens.id_token,
            });
            no_store(([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response())
        }
        Err((client, e)) => {
            // Only a configured client's name becomes a label (no label per made-up client_id).
            let app = client
                .as_deref()
                .and_then(|id| use_case::app_of_client(&state.settings.apps, id))
                .map(|(a, _)| a.name.as_str())
                .unwrap_or("-");
            state.metrics.oidc_token(app, e.error());
            if matches!(e, TokenError::Unavailable(_)) {
                state.metrics.store_error("state");
            }
            if matches!(
                e,
                TokenError::Unavailable(_) | TokenError::Busy(_) | TokenError::Server(_)
            ) {
                tracing::error!(
                    code = format!("oidc_token_{}", e.error()),
                    app,
                    "token request failed: {e}"
                );
            } else {
                tracing::warn!(
                    code = format!("oidc_token_{}", e.error()),
                    app,
                    "token request refused: {e}"
                );
            }
            token_error(&e)
        }
    }
}

/// `GET|POST /oidc/userinfo` with `Authorization: Bearer`.
pub async fn userinfo(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let state = shared.current();
    if let Some(limited) = rate_limited_json(&state, peer, req.headers()) {
        return limited;
    }
    if req.method() != Method::GET && req.method() != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n").into_response();
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string());
    let response = match use_case::userinfo(services(&state), bearer.as_deref()).await {
        Ok(claims) => ([(header::CONTENT_TYPE, "application/json")], claims.to_string()).into_response(),
        Err(e) => {
            let (status, challenge, body) = match &e {
                UserinfoError::NoToken => (StatusCode::UNAUTHORIZED, "Bearer realm=\"entree-bridge\"", Value::Null),
                UserinfoError::InvalidToken => (
                    StatusCode::UNAUTHORIZED,
                    "Bearer realm=\"entree-bridge\", error=\"invalid_token\"",
                    json!({"error": "invalid_token"}),
                ),
                UserinfoError::Unavailable(_) => {
                    state.metrics.store_error("state");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "",
                        json!({"error": "temporarily_unavailable"}),
                    )
                }
            };
            tracing::warn!(code = "oidc_userinfo_refused", "userinfo refused: {e}");
            let mut r = (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
            if !challenge.is_empty() {
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
            }
            r
        }
    };
    no_store(response)
}
