//! Logout and Single Logout on the wire. `{base}/saml2/{fed}/logout`: the browser's session
//! cookies read and [`login::logout`] asked; `{base}/saml2/{fed}/sls`: the raw query handed
//! to [`login::single_logout`]. Both answer with a redirect (to the IdP, or to
//! `post_logout_url`) or the logged-out page.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::errors::LoginError;
use super::pages::{app_page, html_page, html_response, page_csp, AppLook, Lang};
use super::use_case::{apply_cookies, services};
use super::{session, AppState};
use crate::config::App;
use crate::handoff::HandoffMode;
use crate::login::{self, AfterLogout, IdpLogout, LoggedOut};

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
/// like targets at config time), or a page that says what ended and what did not.
pub(super) fn after_logout(app: &App, next: AfterLogout, lang: Lang) -> Response {
    match next {
        AfterLogout::ToIdp(url) | AfterLogout::Finished { target: Some(url), .. } => {
            (StatusCode::FOUND, [(header::LOCATION, url)]).into_response()
        }
        AfterLogout::Finished { target: None, ended } => logged_out_page(app, ended, lang),
    }
}

/// The logged-out page, for a student on a shared school computer above all: which sessions
/// ended, which did not (an app's own session in jwt mode, Entree's without Single Logout),
/// and what to do about those, with the ways on.
fn logged_out_page(app: &App, ended: LoggedOut, lang: Lang) -> Response {
    let look = AppLook::of(app);
    let name = crate::saml::xml::escape(&app.display_name);
    let mut lines: Vec<String> = Vec::new();
    let nl = lang == Lang::Nl;
    // The app's side: the bridge's session is the app's session only where the bridge
    // serves the app (headers); a jwt or oidc app keeps a login of its own.
    lines.push(match (app.handoff.mode, ended.bridge_session, nl) {
        (HandoffMode::Headers, true, true) => format!("Je sessie bij {name} is beëindigd."),
        (HandoffMode::Headers, true, false) => format!("Your session with {name} has ended."),
        (HandoffMode::Headers, false, true) => format!("In deze browser was geen sessie bij {name} meer open."),
        (HandoffMode::Headers, false, false) => format!("There was no open session with {name} left in this browser."),
        (_, true, true) => format!("Je inlog via de bridge voor {name} is beëindigd. {name} houdt ook een eigen inlog bij: log daar ook uit als je nog bent ingelogd."),
        (_, true, false) => format!("Your sign-in through the bridge for {name} has ended. {name} keeps a login of its own: log out there too if you are still signed in."),
        (_, false, true) => format!("{name} houdt zijn eigen inlog bij, en die kan deze pagina niet beëindigen: log uit in {name} zelf (in het menu van {name})."),
        (_, false, false) => format!("{name} keeps its own login, which this page cannot end: log out in {name} itself (in its menu)."),
    });
    let idp_open = ended.idp != IdpLogout::Ended;
    lines.push(match (ended.idp, nl) {
        (IdpLogout::Ended, true) => "Je bent ook uitgelogd bij Entree, de inlog van je school.".to_string(),
        (IdpLogout::Ended, false) => "You are also logged out of Entree, your school's login.".to_string(),
        (IdpLogout::Refused, true) => "Entree heeft het uitloggen niet bevestigd: je inlog bij Entree kan nog open staan.".to_string(),
        (IdpLogout::Refused, false) => "Entree did not confirm the logout: your Entree login may still be open.".to_string(),
        (_, true) => "Je inlog bij Entree (de inlog van je school) staat nog open: wie nu op een link in de elo klikt, is zonder wachtwoord binnen.".to_string(),
        (_, false) => "Your Entree login (your school's login) is still open: whoever clicks a link in the elo now is in without a password.".to_string(),
    });
    if idp_open {
        lines.push(match nl {
            true => "<strong>Op een gedeelde computer: sluit alle vensters van de browser.</strong>".to_string(),
            false => "<strong>On a shared computer: close every window of the browser.</strong>".to_string(),
        });
    }
    let title = match (nl, ended.bridge_session || ended.idp == IdpLogout::Ended) {
        (true, true) => "Je bent uitgelogd",
        (false, true) => "You are logged out",
        (true, false) => "Uitloggen",
        (false, false) => "Logging out",
    };
    let items: String = lines.iter().map(|l| format!("<li>{l}</li>")).collect();
    app_page(
        StatusCode::OK,
        lang,
        title,
        &format!("<h1>{title}</h1><ul>{items}</ul>{}", look.ways_on(lang, false)),
        Some(&look),
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
