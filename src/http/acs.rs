//! The ACS on the wire: the posted form parsed, the login cookies of its RelayState read,
//! [`login::complete`] asked, and its outcome answered: the hand-off (JWT form post or a
//! headers-mode session) or the redirect to the app's link page. The use case itself (the
//! pending login, validation, replay, the resolution order) is in `login/`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::cookies;
use super::errors::LoginError;
use super::pages::Lang;
use super::use_case::{apply_cookies, services};
use super::AppState;
use crate::config::App;
use crate::login::{self, AcsPost, BrowserCookies, LoggedIn, Outcome};

/// Marks an ACS response that sent the student to the app's link page (for the metrics).
#[derive(Debug, Clone, Copy)]
pub struct LinkingStarted;

pub async fn acs(state: &AppState, app: &Arc<App>, headers: &HeaderMap, body: Bytes, lang: Lang) -> Response {
    let post = match read_form(&body) {
        Ok(post) => post,
        Err(e) => return no_store(e.into_response()),
    };
    let mut presented = BrowserCookies::default();
    if let Some(rs) = post.relay_state.as_deref() {
        // The binding rule looks at no more than this many; the rest are not copied.
        let name = cookies::login_cookie_name(app, rs);
        for value in cookies::get_all(headers, &name).take(login::binding::MAX_COOKIES_LOOKED_AT) {
            presented.add(rs, value);
        }
    }
    let answer = login::complete(services(state), app, post, &presented).await;
    let mut response = match answer.result {
        Ok(Outcome::LoggedIn(logged_in)) => hand_off(state, app, headers, *logged_in, lang).await,
        Ok(Outcome::Link { location }) => {
            let mut r = (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
            r.extensions_mut().insert(LinkingStarted);
            r
        }
        Err(e) => {
            let mut r = LoginError::from(e).into_response();
            super::errors::attach_diagnosis(&mut r, answer.diagnosis);
            r
        }
    };
    apply_cookies(app, &mut response, &answer.cookies);
    no_store(response)
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The HTTP-POST binding's fields, each at most once.
fn read_form(body: &[u8]) -> Result<AcsPost, LoginError> {
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
    Ok(AcsPost {
        saml_response: saml_response.ok_or(LoginError::BadRequest("no SAMLResponse field"))?,
        relay_state,
    })
}

/// Hands the identity to the app: in jwt mode the POST page, in headers mode a fresh
/// session and a redirect to the target, in oidc mode a fresh OP session and the code.
pub async fn hand_off(state: &AppState, app: &App, headers: &HeaderMap, logged_in: LoggedIn, lang: Lang) -> Response {
    if app.handoff.mode == crate::handoff::HandoffMode::Oidc {
        return super::oidc::after_login(state, app, headers, logged_in).await;
    }
    let LoggedIn {
        identity,
        target,
        subject,
        oidc: _,
        authenticated_at,
    } = logged_in;
    if app.handoff.mode == crate::handoff::HandoffMode::Headers {
        return match super::session::start(state, app, headers, identity, subject, authenticated_at).await {
            Ok(started) => {
                let location = target.unwrap_or_else(|| app.base_url.to_string());
                let mut r = (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
                if let Ok(v) = HeaderValue::from_str(&started.set_cookie) {
                    r.headers_mut().append(header::SET_COOKIE, v);
                }
                r
            }
            Err(e) => LoginError::StoreUnavailable(e.to_string()).into_response(),
        };
    }
    jwt_page(state, app, &identity, target.as_deref(), lang)
}

/// The JWT hand-off page for a resolved identity.
fn jwt_page(
    state: &AppState,
    app: &App,
    identity: &crate::identity::Identity,
    target: Option<&str>,
    lang: Lang,
) -> Response {
    let now = chrono::Utc::now().timestamp();
    let claims = crate::handoff::claims::build(
        &app.name,
        app.handoff.token_lifetime,
        state.settings.public_base_url.as_str(),
        identity,
        now,
    );
    let token = match state.settings.jwt_keys.sign(&claims) {
        Ok(t) => t,
        Err(e) => return LoginError::Internal(format!("signing the JWT: {e}")).into_response(),
    };
    let callback = app
        .handoff
        .callback_url
        .as_ref()
        .map(|u| u.to_string())
        .unwrap_or_default();
    let origin = app
        .handoff
        .callback_url
        .as_ref()
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let form = crate::handoff::form::jwt_post(&callback, &token, target);
    super::pages::handoff_page(lang, &app.display_name, &form, &origin)
}
