//! `{base}/saml2/{federation}/link/complete?link_response=JWT` on the wire: the browser's
//! link cookies read, [`login::complete_link`] asked, and its answer given (the hand-off, or
//! the cancelled page). Without a `link_response` the student came back from the app's
//! "back" link: that is a cancel, answered here.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::acs::hand_off;
use super::cookies;
use super::errors::LoginError;
use super::pages::{app_page, AppLook, Lang};
use super::use_case::{apply_cookies, services};
use super::AppState;
use crate::config::App;
use crate::login::{self, BrowserCookies, LinkDone};
use crate::saml::xml::escape;

pub async fn complete(state: &AppState, app: &App, headers: &HeaderMap, token: Option<String>, lang: Lang) -> Response {
    // The student came back without an answer (the app's "back" link): that is a cancel.
    // Nothing is stored; any pending link simply expires. Their link cookies are cleared.
    let Some(token) = token else {
        let mut response = cancelled_page(app, lang);
        for jti in cookies::link_cookie_ids(app, headers) {
            if let Ok(v) = HeaderValue::from_str(&cookies::clear_link_cookie(app, jti)) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        return response;
    };
    let answer = login::complete_link(services(state), app, &token, &link_cookies(app, headers)).await;
    let mut response = match answer.result {
        Ok(LinkDone::LoggedIn(logged_in, mixed_affiliations)) => {
            if mixed_affiliations {
                state.metrics.mixed_affiliations(&app.name);
            }
            hand_off(state, app, headers, *logged_in, lang).await
        }
        Ok(LinkDone::Cancelled) => cancelled_page(app, lang),
        Err(e) => LoginError::from(e).into_response(),
    };
    apply_cookies(app, &mut response, &answer.cookies);
    response
}

/// The values of the link cookies of `app` the browser presents, by their link's `jti` (one
/// pass over the Cookie headers, bounded: this runs before the `link_response` is verified).
fn link_cookies(app: &App, headers: &HeaderMap) -> BrowserCookies {
    let mut presented = BrowserCookies::default();
    for (jti, value) in cookies::link_cookie_values(app, headers) {
        presented.add(jti, value);
    }
    presented
}

fn cancelled_page(app: &App, lang: Lang) -> Response {
    let login = escape(&app.route_url("login"));
    let name = escape(&app.display_name);
    let (title, body) = match lang {
        Lang::Nl => (
            "Koppelen afgebroken",
            format!("Je account is niet gekoppeld. Er is niets opgeslagen. <a href=\"{login}\">Opnieuw proberen</a> of ga terug naar je elo."),
        ),
        Lang::En => (
            "Linking cancelled",
            format!("Your account was not linked to {name}. Nothing was stored. <a href=\"{login}\">Try again</a> or go back to your learning environment."),
        ),
    };
    let look = AppLook::of(app);
    app_page(
        StatusCode::OK,
        lang,
        title,
        &format!("<h1>{title}</h1><p>{body}</p>"),
        Some(&look),
    )
}
