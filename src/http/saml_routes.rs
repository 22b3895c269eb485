//! The handlers of three per-app routes: the SP metadata, the app's logo and the start of a
//! login (its use case is `login::start`); the ACS, link completion and logout live in their
//! own modules, the routing in `router`.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
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

/// The app's logo, from memory (read and checked at config load). An app without one has
/// no such address. Cached a day by browsers: the pages ask for it with its ETag in the
/// query (`?v=`), so a new logo is a new address after a reload; revalidated by its ETag.
/// The CSP keeps an SVG from running anything should it be opened by itself.
pub(super) fn logo(app: &App, headers: &HeaderMap) -> Response {
    let Some(logo) = &app.branding.logo else {
        return LoginError::UnknownApp.into_response();
    };
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            // If-None-Match compares weakly: a proxy that compressed the logo made the tag
            // weak (W/"..."), and `*` matches any current logo.
            v.split(',')
                .map(|tag| tag.trim())
                .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == logo.etag)
        });
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, logo.content_type)],
            axum::body::Bytes::from_owner(logo.bytes.clone()),
        )
            .into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    if let Ok(etag) = HeaderValue::from_str(&logo.etag) {
        h.insert(header::ETAG, etag);
    }
    response
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
