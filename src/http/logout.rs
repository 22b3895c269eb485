//! Logout and Single Logout. `{base}/saml2/{fed}/logout` ends this app's bridge session and,
//! when the IdP has a SingleLogoutService, sends it a signed LogoutRequest (Redirect binding).
//! `{base}/saml2/{fed}/sls` takes the IdP's LogoutResponse (signature checked, and it must
//! answer our request) and IdP-initiated LogoutRequests (signature checked; every session of
//! that subject in this app ends; the answer is a signed LogoutResponse).

use std::time::{Duration, SystemTime};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::errors::LoginError;
use super::pages::{html_page, html_response, page_csp, Lang};
use super::{session, AppState};
use crate::config::App;
use crate::saml::logout;
use crate::saml::redirect::{self, Kind};
use crate::store::PendingLogin;

/// How long a sent LogoutRequest waits for its answer.
const LOGOUT_WAIT: Duration = Duration::from_secs(600);

pub async fn logout(state: &AppState, app: &App, headers: &HeaderMap, lang: Lang) -> Response {
    let current = match session::current(state, app, headers).await {
        Ok(s) => s,
        Err(e) => return LoginError::StoreUnavailable(e.to_string()).into_response(),
    };
    // Every session id the browser presents ends: of several, one may be a planted one.
    for id in session::presented_ids(app, headers) {
        if let Err(e) = state.store.remove_session(id).await {
            return LoginError::StoreUnavailable(e.to_string()).into_response();
        }
    }
    // Without usable IdP metadata the local logout still happens; only Single Logout is skipped.
    let slo_redirect = state
        .metadata
        .idp(&app.federation.name)
        .ok()
        .and_then(|idp| idp.slo_redirect.clone());
    let mut response = match (current, &slo_redirect) {
        (Some(s), Some(slo)) => match start_single_logout(state, app, &s.subject, &slo.location).await {
            Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
            Err(e) => e.into_response(),
        },
        _ => after_logout(app, app.post_logout_url.as_ref().map(|u| u.to_string()), lang),
    };
    tracing::info!(app = app.name, "logged out");
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(app)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

async fn start_single_logout(
    state: &AppState,
    app: &App,
    subject: &crate::store::Subject,
    slo_url: &str,
) -> Result<String, LoginError> {
    let request_id = crate::keys::random_saml_id();
    let relay_state = crate::keys::random_token();
    let xml = logout::request_xml(
        &request_id,
        slo_url,
        &app.sp.entity_id,
        &subject.name_id,
        subject.name_id_format.as_deref(),
        subject.session_index.as_deref(),
    );
    let url = redirect::build_url(slo_url, Kind::Request, &xml, &relay_state, Some(&app.sp.key))
        .map_err(|e| LoginError::Internal(format!("signing the LogoutRequest: {e}")))?;
    let pending = PendingLogin {
        request_id,
        app: app.name.clone(),
        target: app.post_logout_url.as_ref().map(|u| u.to_string()),
        // Random, never empty: this entry shares the store with pending logins.
        browser_nonce: crate::keys::random_token(),
        expires_at: SystemTime::now() + LOGOUT_WAIT,
    };
    state
        .store
        .put_pending(&relay_state, pending)
        .await
        .map_err(LoginError::from)?;
    Ok(url)
}

/// Where the browser goes after logout: `post_logout_url` (checked like targets at config
/// time), or a page that says the student is logged out.
fn after_logout(app: &App, target: Option<String>, lang: Lang) -> Response {
    if let Some(url) = target {
        return (StatusCode::FOUND, [(header::LOCATION, url)]).into_response();
    }
    let (title, body) = match lang {
        Lang::Nl => (
            "Je bent uitgelogd",
            format!("Je bent uitgelogd bij {}.", crate::saml::xml::escape(&app.display_name)),
        ),
        Lang::En => (
            "You are logged out",
            format!("You are logged out of {}.", crate::saml::xml::escape(&app.display_name)),
        ),
    };
    html_response(
        StatusCode::OK,
        html_page(lang, title, &format!("<h1>{title}</h1><p>{body}</p>")),
        &page_csp(),
    )
}

pub async fn sls(state: &AppState, app: &App, raw_query: &str, lang: Lang) -> Response {
    match handle_sls(state, app, raw_query, lang).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle_sls(state: &AppState, app: &App, raw_query: &str, lang: Lang) -> Result<Response, LoginError> {
    let idp = state.metadata.idp(&app.federation.name)?;
    let received = redirect::receive(raw_query, &idp.signing_certs, app.federation.trust.allow_sha1)?;
    let sls_url = app.route_url("sls");
    match received.kind {
        Kind::Response => {
            let answer = logout::read_response(&received.xml, &idp.entity_id, &sls_url)?;
            let pending = match received.relay_state.as_deref() {
                Some(rs) => state
                    .store
                    .take_pending(rs)
                    .await
                    .map_err(|e| LoginError::StoreUnavailable(e.to_string()))?,
                None => None,
            };
            let pending = pending
                .filter(|p| p.app == app.name && p.request_id == answer.in_response_to)
                .ok_or(LoginError::LogoutStateMissing)?;
            tracing::info!(
                app = app.name,
                success = answer.success,
                "single logout answered by the IdP"
            );
            Ok(after_logout(app, pending.target, lang))
        }
        Kind::Request => {
            let skew = chrono::Duration::from_std(app.federation.trust.clock_skew).unwrap_or_default();
            let request = logout::read_request(&received.xml, &idp.entity_id, &sls_url, chrono::Utc::now(), skew)?;
            // The sessions end first, and only then is the request recorded as used: if the
            // store fails halfway, the IdP's retry must still be able to end the rest. A replay
            // can thus end the subject's sessions once more before it is refused: logging out
            // too much, never too little.
            let ended = state
                .store
                .remove_sessions_of(&app.name, &request.name_id)
                .await
                .map_err(|e| LoginError::StoreUnavailable(e.to_string()))?;
            let until = SystemTime::now() + (logout::MAX_REQUEST_AGE + skew * 2).to_std().unwrap_or(LOGOUT_WAIT);
            let fresh = state
                .store
                .remember_assertion(&format!("slo|{}|{}", idp.entity_id, request.id), until)
                .await
                .map_err(|e| LoginError::StoreUnavailable(e.to_string()))?;
            if !fresh {
                return Err(LoginError::LogoutReplayed);
            }
            tracing::info!(
                app = app.name,
                ended,
                person = state.settings.pseudonyms.of(&request.name_id),
                "IdP-initiated logout"
            );
            let Some(slo) = &idp.slo_redirect else {
                return Ok(after_logout(app, None, lang));
            };
            let xml = logout::response_xml(
                &crate::keys::random_saml_id(),
                &slo.response_location,
                &app.sp.entity_id,
                &request.id,
                true,
            );
            let url = redirect::build_url(
                &slo.response_location,
                Kind::Response,
                &xml,
                received.relay_state.as_deref().unwrap_or(""),
                Some(&app.sp.key),
            )
            .map_err(|e| LoginError::Internal(format!("signing the LogoutResponse: {e}")))?;
            Ok((StatusCode::FOUND, [(header::LOCATION, url)]).into_response())
        }
    }
}
