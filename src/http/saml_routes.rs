//! The per-app routes under `{base}/saml2/{federation}/`: metadata, login, acs.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::cookies;
use super::errors::LoginError;
use super::pages::Lang;
use super::target;
use super::{AppState, MAX_BODY_BYTES};
use crate::config::App;
use crate::handoff;
use crate::saml::authn_request::AuthnRequest;
use crate::saml::response::{self, Expectations, Report};
use crate::saml::xml::XmlLimits;
use crate::store::PendingLogin;

/// How long a started login waits for the IdP's answer.
pub const PENDING_LOGIN_LIFETIME: Duration = Duration::from_secs(600);

pub async fn dispatch(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let lang = Lang::from_headers(req.headers());
    let path = req.uri().path().to_string();
    let Some((app, rest)) = super::resolve::app_for(&state.settings, req.headers(), &path) else {
        return LoginError::UnknownApp.respond(lang, None);
    };
    let app = app.clone();
    let route = rest.strip_prefix(&format!("/saml2/{}/", app.federation.name));
    match (req.method().clone(), route) {
        (Method::GET, Some("metadata")) => metadata(&app),
        (Method::GET, Some("login")) => {
            let target = query_param(&req, "target");
            login(&state, &app, target, lang).await
        }
        (Method::POST, Some("acs")) => {
            let headers = req.headers().clone();
            match axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await {
                Ok(body) => acs(&state, &app, &headers, body, lang).await,
                Err(_) => LoginError::BadRequest("body too large or unreadable").respond(lang, Some(&app.display_name)),
            }
        }
        (_, Some("metadata" | "login" | "acs")) => {
            (StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n").into_response()
        }
        _ => LoginError::UnknownApp.respond(lang, Some(&app.display_name)),
    }
}

fn metadata(app: &App) -> Response {
    let rendered = crate::keys::certificate_b64(&app.sp_cert)
        .map_err(|e| e.to_string())
        .and_then(|cert| crate::saml::sp_metadata::render(app, &cert));
    match rendered {
        Ok(xml) => ([(header::CONTENT_TYPE, "application/samlmetadata+xml")], xml).into_response(),
        Err(e) => LoginError::Internal(format!("SP metadata: {e}")).respond(Lang::En, Some(&app.display_name)),
    }
}

async fn login(state: &AppState, app: &App, target: Option<String>, lang: Lang) -> Response {
    let target = match target {
        None => None,
        Some(raw) => match target::check(app, &raw) {
            Some(t) => Some(t),
            None => return LoginError::TargetNotAllowed(raw).respond(lang, Some(&app.display_name)),
        },
    };
    let request_id = crate::keys::random_saml_id();
    let relay_state = crate::keys::random_token();
    let nonce = crate::keys::random_token();
    let idp = &app.federation.idp;
    let request = AuthnRequest {
        id: &request_id,
        sp_entity_id: &app.sp_entity_id,
        acs_url: &app.acs_url,
        destination: &idp.sso_redirect_url,
    };
    let sign_with = idp.want_authn_requests_signed.then_some(&app.sp_key);
    let location = match request.redirect_url(&relay_state, sign_with) {
        Ok(url) => url,
        Err(e) => {
            return LoginError::Internal(format!("signing the AuthnRequest: {e}"))
                .respond(lang, Some(&app.display_name))
        }
    };
    let pending = PendingLogin {
        request_id: request_id.clone(),
        app: app.name.clone(),
        target,
        browser_nonce: nonce.clone(),
        expires_at: SystemTime::now() + PENDING_LOGIN_LIFETIME,
    };
    if let Err(e) = state.store.put_pending(&relay_state, pending).await {
        return LoginError::StoreUnavailable(e.to_string()).respond(lang, Some(&app.display_name));
    }
    tracing::info!(app = app.name, request_id, "login started");
    let mut response = (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&cookies::set_login_cookie(app, &relay_state, &nonce)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn query_param(req: &Request, name: &str) -> Option<String> {
    let query = req.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn acs(state: &AppState, app: &App, headers: &HeaderMap, body: Bytes, lang: Lang) -> Response {
    let mut clear_cookie = None;
    let result = acs_inner(state, app, headers, &body, &mut clear_cookie).await;
    let mut response = match result {
        Ok((token, target)) => {
            state.metrics.logins_ok.fetch_add(1, Ordering::Relaxed);
            let callback = app.callback_url.as_ref().map(|u| u.to_string()).unwrap_or_default();
            let origin = app
                .callback_url
                .as_ref()
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default();
            let html = handoff::form::render(lang, &app.display_name, &callback, &token, target.as_deref());
            super::pages::html_response(StatusCode::OK, html, &handoff::form::csp(&origin))
        }
        Err(e) => {
            state.metrics.logins_rejected.fetch_add(1, Ordering::Relaxed);
            e.respond(lang, Some(&app.display_name))
        }
    };
    if let Some(cookie) = clear_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The ACS proper: the pending login, validation, replay cache, identity, token.
async fn acs_inner(
    state: &AppState,
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
    clear_cookie: &mut Option<String>,
) -> Result<(String, Option<String>), LoginError> {
    let mut saml_response = None;
    let mut relay_state = None;
    for (k, v) in url::form_urlencoded::parse(body) {
        match k.as_ref() {
            "SAMLResponse" if saml_response.is_none() => saml_response = Some(v.into_owned()),
            "RelayState" if relay_state.is_none() => relay_state = Some(v.into_owned()),
            "SAMLResponse" | "RelayState" => return Err(LoginError::BadRequest("a form field appears twice")),
            _ => {}
        }
    }
    let saml_response = saml_response.ok_or(LoginError::BadRequest("no SAMLResponse field"))?;

    // The pending login this browser started, looked up by RelayState and bound by cookie.
    let mut pending = None;
    if let Some(rs) = relay_state.as_deref().filter(|rs| rs.len() <= 64) {
        *clear_cookie = Some(cookies::clear_login_cookie(app, rs));
        let found = state
            .store
            .take_pending(rs)
            .await
            .map_err(|e| LoginError::StoreUnavailable(e.to_string()))?;
        if let Some(p) = found {
            let cookie = cookies::get(headers, &cookies::login_cookie_name(rs));
            if p.app != app.name || !cookie.is_some_and(|c| cookies::same_secret(c, &p.browser_nonce)) {
                return Err(LoginError::BrowserMismatch);
            }
            pending = Some(p);
        }
    }
    if pending.is_none() && !app.allow_unsolicited {
        return Err(LoginError::LoginStateMissing);
    }

    let limits = XmlLimits::default();
    let xml = response::decode_post_binding(&saml_response, limits)?;
    let federation = &app.federation;
    let keys = [app.sp_key.clone()];
    let expectations = Expectations {
        idp_entity_id: &federation.idp.entity_id,
        idp_certs: &federation.idp.signing_certs,
        sp_entity_id: &app.sp_entity_id,
        acs_url: &app.acs_url,
        request_id: pending.as_ref().map(|p| p.request_id.as_str()),
        allow_unsolicited: app.allow_unsolicited,
        allow_sha1: federation.allow_sha1,
        clock_skew: federation.clock_skew,
        now: chrono::Utc::now(),
        decryption_keys: &keys,
        limits,
    };
    let assertion = response::validate(&xml, &expectations, &mut Report::disabled())?;

    // Identity rules first: a refused school or person leaves nothing behind, not even a
    // replay-cache entry.
    let identity = crate::identity::resolve(app, &assertion)?;
    let replay_key = format!("{}|{}", assertion.issuer, assertion.assertion_id);
    let until = SystemTime::UNIX_EPOCH + Duration::from_secs(assertion.replay_until.timestamp().max(0) as u64);
    let fresh = state
        .store
        .remember_assertion(&replay_key, until)
        .await
        .map_err(|e| LoginError::StoreUnavailable(e.to_string()))?;
    if !fresh {
        return Err(LoginError::Replay(assertion.assertion_id));
    }

    let now = chrono::Utc::now().timestamp();
    let claims = handoff::claims::build(app, state.settings.public_base_url.as_str(), &identity, now);
    let token = state
        .settings
        .jwt_keys
        .sign(&claims)
        .map_err(|e| LoginError::Internal(format!("signing the JWT: {e}")))?;
    // Unsolicited logins may carry a target in RelayState; it passes the same origin check.
    let target = match pending {
        Some(p) => p.target,
        None => relay_state.as_deref().and_then(|rs| target::check_absolute(app, rs)),
    };
    tracing::info!(
        app = app.name,
        school = identity.school.as_deref().unwrap_or("-"),
        person = pseudonym(&identity.person_code),
        encrypted = assertion.encrypted,
        "login accepted"
    );
    Ok((token, target))
}

/// Logs carry no full identifiers: the last four characters are enough to correlate.
pub fn pseudonym(id: &str) -> String {
    let tail: String = id.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("…{tail}")
}
