//! Logout and Single Logout on the wire. `{base}/saml2/{fed}/logout`: the browser's session
//! cookies read and [`login::logout`] asked; `{base}/saml2/{fed}/sls`: the raw query handed
//! to [`login::single_logout`]. Both answer with a redirect (to the IdP, or to
//! `post_logout_url`) or the logged-out page.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::errors::LoginError;
use super::pages::{html_page, html_response, page_csp, Lang};
use super::use_case::{apply_cookies, services};
use super::{session, AppState};
use crate::config::App;
use crate::login::{self, AfterLogout};

pub async fn logout(state: &AppState, app: &App, headers: &HeaderMap, lang: Lang) -> Response {
    let current = match session::current(state, app, headers).await {
        Ok(s) => s,
        Err(e) => return LoginError::StoreUnavailable(e.to_string()).into_response(),
    };
    let presented = session::presented_ids(app, headers);
    let answer = login::logout(services(state), app, current.map(|s| s.subject), &presented).await;
    let mut response = match answer.result {
        Ok(next) => after_logout(app, next, lang),
        Err(e) => LoginError::from(e).into_response(),
    };
    apply_cookies(app, &mut response, &answer.cookies);
    response
}

pub async fn sls(state: &AppState, app: &App, raw_query: &str, lang: Lang) -> Response {
    let done = login::single_logout(services(state), app, raw_query).await;
    super::oidc_logout::deliver(state, done.notices);
    match done.result {
        Ok(next) => after_logout(app, next, lang),
        Err(e) => LoginError::from(e).into_response(),
    }
}

/// Where the browser goes after a logout step: to the IdP, to `post_logout_url` (checked
/// like targets at config time), or a page that says the student is logged out.
pub(super) fn after_logout(app: &App, next: AfterLogout, lang: Lang) -> Response {
    match next {
        AfterLogout::ToIdp(url) | AfterLogout::Finished { target: Some(url) } => {
            (StatusCode::FOUND, [(header::LOCATION, url)]).into_response()
        }
        AfterLogout::Finished { target: None } => logged_out_page(app, lang),
    }
}

fn logged_out_page(app: &App, lang: Lang) -> Response {
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

/// RP-initiated logout without a client: every OP session of this browser has ended.
pub(super) fn logged_out_everywhere_page(lang: Lang) -> Response {
    let (title, body) = match lang {
        Lang::Nl => (
            "Je bent uitgelogd",
            "Je bent uitgelogd bij de apps die via deze bridge inloggen.",
        ),
        Lang::En => (
            "You are logged out",
            "You are logged out of the apps that sign in through this bridge.",
        ),
    };
    html_response(
        StatusCode::OK,
        html_page(lang, title, &format!("<h1>{title}</h1><p>{body}</p>")),
        &page_csp(),
    )
}
