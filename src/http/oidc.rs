//! The OpenID Connect endpoints on the wire (DESIGN.md "oidc mode"): discovery, authorize,
//! token, userinfo and end_session, plus the hand-off at the end of an oidc app's login (a
//! fresh OP session and the code) and the delivery of Back-Channel Logout tokens. The checks
//! are `handoff::oidc`'s and the use case `login::oidc`'s; this module reads requests and
//! writes answers: pages for what cannot go to a client, OAuth JSON errors where RFC 6749
//! wants them, `Cache-Control: no-store` on everything that carries a token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::errors::{self, LoginError};
use super::logout::after_logout;
use super::pages::Lang;
use super::use_case::{apply_cookies, services};
use super::{session, AppState, Shared};
use crate::config::App;
use crate::handoff::oidc::authorize::{self, AuthorizeQuery, Refusal};
use crate::handoff::oidc::{client_auth, discovery};
use crate::login::oidc::{
    self as use_case, Authorized, EndSessionQuery, OidcRefusal, TokenError, TokenForm, UserinfoError,
};
use crate::login::{self, LoggedIn, LoginFailure, LogoutNotice};

/// Largest token request body read: its fields are a code, a verifier, a URI and a secret.
const MAX_TOKEN_BODY: usize = 16 * 1024;
/// How long a Back-Channel Logout POST may take, connecting included.
pub const BACKCHANNEL_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn discovery(State(shared): State<Arc<Shared>>) -> Response {
    let state = shared.current();
    let extra: Vec<&str> = state
        .settings
        .apps
        .iter()
        .filter(|a| a.handoff.oidc.is_some())
        .flat_map(|a| a.identity.claims.iter().map(|(claim, _)| claim.as_str()))
        .collect();
    let keys = &state.settings.jwt_keys;
    // RS256 always (Discovery 1.0, 3: it MUST be listed; check-config sees that an app that
    // uses it has its key), ES256 when a key signs it.
    let mut algs = vec![crate::jws::Alg::Rs256.name()];
    if keys.has(crate::jws::Alg::Es256) {
        algs.push(crate::jws::Alg::Es256.name());
    }
    let document = discovery::document(state.settings.public_base_url.as_str(), &extra, &algs);
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        document.to_string(),
    )
        .into_response()
}

/// The rate limit's answer for the endpoints a client library calls (token, userinfo): JSON
/// with `Retry-After`, which those libraries read, not a page.
fn rate_limited_json(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> Option<Response> {
    let client = super::rate_limit::client_address(peer.ip(), headers, &state.settings.trusted_proxies);
    state.rate_limiter.check(client).err().map(|retry_after| {
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
fn rate_limited(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> Option<Response> {
    let client = super::rate_limit::client_address(peer.ip(), headers, &state.settings.trusted_proxies);
    state.rate_limiter.check(client).err().map(|retry_after| {
        LoginError::RateLimited {
            address: client.ip.to_string(),
            retry_after,
        }
        .into_response()
    })
}

fn no_store(mut response: Response) -> Response {
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

fn page(refusal: OidcRefusal) -> Response {
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
    let raw = if parts.method == Method::POST {
        match axum::body::to_bytes(body, MAX_TOKEN_BODY).await {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(_) => return no_store(page(OidcRefusal::RequestMalformed)),
        }
    } else {
        parts.uri.query().unwrap_or("").to_string()
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
    errors::name_app(&mut response, &app.display_name);
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

/// `GET|POST /oidc/logout` (end_session_endpoint, RP-Initiated Logout 1.0). A logout ends
/// the session at once only when the request proves it comes from the session's own client:
/// an `id_token_hint` whose `sid` is this browser's session. Anything else (no hint, a hint of
/// another session) could be a page of anyone's that sends the browser here, so the student
/// confirms on a page of the bridge (RP-Initiated Logout 1.0, 2), whose POST carries a value
/// only that page and a SameSite=Strict cookie know.
pub async fn logout(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let state = shared.current();
    if let Some(limited) = rate_limited(&state, peer, req.headers()) {
        return limited;
    }
    let lang = Lang::from_headers(req.headers());
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    let raw = if parts.method == Method::POST {
        match axum::body::to_bytes(body, MAX_TOKEN_BODY).await {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(_) => return no_store(page(OidcRefusal::RequestMalformed)),
        }
    } else {
        parts.uri.query().unwrap_or("").to_string()
    };
    let Some((query, confirm)) = end_session_query(&raw) else {
        return no_store(page(OidcRefusal::RequestMalformed));
    };
    let end = match use_case::end_session(services(&state), &state.settings.apps, &query) {
        Ok(end) => end,
        Err(e) => {
            tracing::warn!(client = query.client_id, "RP-initiated logout refused");
            return no_store(page(e));
        }
    };
    // Confirmed by the student on the bridge's own page: the form's value is the cookie's.
    let confirmed = parts.method == Method::POST
        && confirm.as_deref().is_some_and(|given| {
            super::cookies::get(headers, LOGOUT_CONFIRM_COOKIE)
                .is_some_and(|c| c.len() == given.len() && openssl::memcmp::eq(c.as_bytes(), given.as_bytes()))
        });
    let response = match end.app {
        Some(app) => {
            let current = match session::current_with_id(&state, &app, headers).await {
                Ok(s) => s,
                Err(e) => return LoginError::StoreUnavailable(e.to_string()).into_response(),
            };
            let hinted_this_session = match (&current, &end.hint_sid) {
                (Some((id, _)), Some(sid)) => crate::handoff::oidc::tokens::sid_of(id) == *sid,
                _ => false,
            };
            if current.is_some() && !hinted_this_session && !confirmed {
                return no_store(confirm_page(&state, lang, &query, Some(&app.display_name)));
            }
            let presented = session::presented_ids(&app, headers);
            let answer = login::logout_to(
                services(&state),
                &app,
                current.map(|(_, s)| s.subject),
                &presented,
                end.return_to,
            )
            .await;
            let mut response = match answer.result {
                Ok(next) => after_logout(&app, next, lang),
                Err(e) => LoginError::from(e).into_response(),
            };
            apply_cookies(&app, &mut response, &answer.cookies);
            errors::name_app(&mut response, &app.display_name);
            response
        }
        // No client named: every OP session this browser holds ends here, once confirmed (no
        // Single Logout: without a client there is no app to run it for).
        None => {
            let oidc_apps: Vec<&Arc<App>> = state
                .settings
                .apps
                .iter()
                .filter(|a| a.handoff.oidc.is_some())
                .collect();
            let holds_any = oidc_apps.iter().any(|a| !session::presented_ids(a, headers).is_empty());
            if holds_any && !confirmed {
                return no_store(confirm_page(&state, lang, &query, None));
            }
            let mut cleared = Vec::new();
            for app in oidc_apps {
                for id in session::presented_ids(app, headers) {
                    if let Err(e) = state.store.remove_session(id).await {
                        return LoginError::StoreUnavailable(e.to_string()).into_response();
                    }
                }
                cleared.push(app.clone());
            }
            let mut response = super::logout::logged_out_everywhere_page(lang);
            for app in &cleared {
                apply_cookies(app, &mut response, &[login::CookieChange::ClearSession]);
            }
            response
        }
    };
    no_store(response)
}

/// The cookie that ties a logout confirmation to the page that asked for it.
const LOGOUT_CONFIRM_COOKIE: &str = "eb_logout_confirm";

/// "Do you want to log out?": a form that POSTs the request's parameters back with a fresh
/// value, which the SameSite=Strict cookie set here carries too (another site's form cannot).
/// `app_name`: the app whose session ends, `None` for every app's.
fn confirm_page(state: &AppState, lang: Lang, query: &EndSessionQuery, app_name: Option<&str>) -> Response {
    use crate::saml::xml::escape;
    let token = crate::keys::random_token();
    let mut fields = format!("<input type=\"hidden\" name=\"confirm\" value=\"{token}\">");
    for (name, value) in [
        ("id_token_hint", &query.id_token_hint),
        ("client_id", &query.client_id),
        ("post_logout_redirect_uri", &query.post_logout_redirect_uri),
        ("state", &query.state),
    ] {
        if let Some(v) = value {
            fields.push_str(&format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                escape(v)
            ));
        }
    }
    let (title, text, button) = match (lang, app_name) {
        (Lang::Nl, Some(app)) => (
            "Uitloggen?",
            format!("Wil je uitloggen bij {}?", escape(app)),
            "Uitloggen",
        ),
        (Lang::Nl, None) => (
            "Uitloggen?",
            "Wil je uitloggen bij de apps die via deze bridge inloggen?".to_string(),
            "Uitloggen",
        ),
        (Lang::En, Some(app)) => (
            "Log out?",
            format!("Do you want to log out of {}?", escape(app)),
            "Log out",
        ),
        (Lang::En, None) => (
            "Log out?",
            "Do you want to log out of the apps that sign in through this bridge?".to_string(),
            "Log out",
        ),
    };
    let body = format!(
        "<h1>{title}</h1><p>{text}</p><form method=\"post\" action=\"{}\">{fields}<p><button type=\"submit\">{button}</button></p></form>",
        discovery::LOGOUT_PATH
    );
    let mut response = super::pages::html_response(
        StatusCode::OK,
        super::pages::html_page(lang, title, &body),
        &super::pages::page_csp(),
    );
    let secure = if state.settings.public_base_url.scheme() == "https" {
        " Secure;"
    } else {
        ""
    };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LOGOUT_CONFIRM_COOKIE}={token}; Path={}; Max-Age=600; HttpOnly;{secure} SameSite=Strict",
        discovery::LOGOUT_PATH
    )) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// The end_session parameters and the confirmation value, each at most once (`None`: one
/// given twice); an empty value counts as absent.
fn end_session_query(raw: &str) -> Option<(EndSessionQuery, Option<String>)> {
    let mut q = EndSessionQuery::default();
    let mut confirm = None;
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        let slot = match k.as_ref() {
            "id_token_hint" => &mut q.id_token_hint,
            "client_id" => &mut q.client_id,
            "post_logout_redirect_uri" => &mut q.post_logout_redirect_uri,
            "state" => &mut q.state,
            "confirm" => &mut confirm,
            _ => continue,
        };
        if slot.is_some() {
            return None;
        }
        if !v.is_empty() {
            *slot = Some(v.into_owned());
        }
    }
    Some((q, confirm))
}

/// Delivers Back-Channel Logout tokens in the background (the IdP's browser does not wait
/// for the apps), each POST bounded by [`BACKCHANNEL_TIMEOUT`], its outcome counted in
/// `entree_bridge_oidc_backchannel_logout_total{app,result}` and failures logged.
pub(super) fn deliver(state: &AppState, notices: Vec<LogoutNotice>) {
    let Some(client) = state.backchannel.clone() else {
        return;
    };
    for notice in notices {
        let client = client.clone();
        let metrics = state.metrics.clone();
        tokio::spawn(async move {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("logout_token", &notice.logout_token)
                .finish();
            let request = axum::http::Request::post(notice.uri.as_str())
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::CACHE_CONTROL, "no-store")
                .body(Body::from(body));
            let result = match request {
                Err(e) => Err(format!("cannot build the request: {e}")),
                Ok(request) => match tokio::time::timeout(BACKCHANNEL_TIMEOUT, client.request(request)).await {
                    Err(_) => Err(format!("no answer within {} s", BACKCHANNEL_TIMEOUT.as_secs())),
                    Ok(Err(e)) => Err(format!("cannot reach it: {e}")),
                    Ok(Ok(r)) if r.status().is_success() => Ok(()),
                    Ok(Ok(r)) => Err(format!("it answered {}", r.status())),
                },
            };
            match result {
                Ok(()) => {
                    metrics.oidc_backchannel(&notice.app, "ok");
                    tracing::info!(app = notice.app, "back-channel logout delivered");
                }
                Err(why) => {
                    metrics.oidc_backchannel(&notice.app, "error");
                    tracing::warn!(
                        app = notice.app,
                        uri = notice.uri.as_str(),
                        "back-channel logout not delivered: {why}"
                    );
                }
            }
        });
    }
}
