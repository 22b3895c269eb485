//! The handlers of two per-app SAML routes: the SP metadata and the start of a login; the
//! ACS, link completion and logout live in their own modules, the routing in `router`.

use std::time::{Duration, SystemTime};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::cookies;
use super::errors::{Failure, LoginError};
use super::pages::Lang;
use super::target;
use super::AppState;
use crate::config::App;
use crate::saml::authn_request::AuthnRequest;
use crate::store::PendingLogin;

/// How long a started login waits for the IdP's answer.
pub const PENDING_LOGIN_LIFETIME: Duration = Duration::from_secs(600);

pub(super) fn metadata(state: &AppState, app: &App) -> Response {
    match state.rendered.sp_metadata.get(&app.name) {
        Some(Ok(xml)) => ([(header::CONTENT_TYPE, "application/samlmetadata+xml")], xml.clone()).into_response(),
        Some(Err(e)) => Failure::new(LoginError::Internal(format!("SP metadata: {e}")))
            .in_language(Lang::En)
            .into_response(),
        None => Failure::new(LoginError::UnknownApp)
            .in_language(Lang::En)
            .into_response(),
    }
}

pub(super) async fn login(state: &AppState, app: &App, target: Option<String>) -> Response {
    let target = match target {
        None => None,
        Some(raw) => match target::check(app, &raw) {
            Some(t) => Some(t),
            None => return LoginError::TargetNotAllowed(raw).into_response(),
        },
    };
    let request_id = crate::keys::random_saml_id();
    let relay_state = crate::keys::random_token();
    let nonce = crate::keys::random_token();
    let idp = match state.metadata.idp(&app.federation.name) {
        Ok(idp) => idp,
        Err(e) => return LoginError::from(e).into_response(),
    };
    let request = AuthnRequest {
        id: &request_id,
        sp_entity_id: &app.sp.entity_id,
        acs_url: &app.sp.acs_url,
        destination: &idp.sso_redirect_url,
    };
    let sign_with = idp.want_authn_requests_signed.then_some(&app.sp.key);
    let location = match request.redirect_url(&relay_state, sign_with) {
        Ok(url) => url,
        Err(e) => return LoginError::Internal(format!("signing the AuthnRequest: {e}")).into_response(),
    };
    let pending = PendingLogin {
        request_id: request_id.clone(),
        app: app.name.clone(),
        target,
        browser_nonce: nonce.clone(),
        expires_at: SystemTime::now() + PENDING_LOGIN_LIFETIME,
    };
    if let Err(e) = state.store.put_pending(&relay_state, pending).await {
        return LoginError::from(e).into_response();
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
