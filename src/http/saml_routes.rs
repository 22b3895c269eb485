//! The handlers of two per-app SAML routes: the SP metadata and the start of a login (its use
//! case is `login::start`); the ACS, link completion and logout live in their own modules, the
//! routing in `router`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::errors::{Failure, LoginError};
use super::pages::Lang;
use super::AppState;
use crate::config::App;
use crate::login;

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

/// The start of a login: [`login::start`], then the redirect to the IdP with the login cookie.
pub(super) async fn login(state: &AppState, app: &App, target: Option<String>) -> Response {
    let started = match login::start(super::use_case::services(state), app, target).await {
        Ok(started) => started,
        Err(e) => return LoginError::from(e).into_response(),
    };
    let mut response = (StatusCode::FOUND, [(header::LOCATION, started.location)]).into_response();
    super::use_case::apply_cookies(app, &mut response, &[started.cookie]);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
