//! `{base}/saml2/{federation}/link/complete?link_response=JWT`: the end of first-time linking.
//! The response must verify (HS256, audience, expiry), name a pending link of THIS browser,
//! and is usable once; then the link is stored atomically and the login finishes as usual.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::cookies;
use super::errors::LoginError;
use super::pages::{html_page, html_response, page_csp, Lang};
use super::AppState;
use crate::config::App;
use crate::identity::linking::{self, LinkAnswer};
use crate::identity::Identity;
use crate::saml::xml::escape;
use crate::store::links::LinkSource;

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
    let mut clear = None;
    let result = finish(state, app, headers, token, &mut clear).await;
    let mut response = match result {
        Ok(Done::Linked(identity, target, subject)) => {
            super::acs::hand_off(state, app, headers, *identity, target, subject, lang).await
        }
        Ok(Done::Cancelled) => cancelled_page(app, lang),
        Err(e) => e.into_response(),
    };
    if let Some(v) = clear.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

enum Done {
    Linked(Box<Identity>, Option<String>, crate::store::Subject),
    Cancelled,
}

async fn finish(
    state: &AppState,
    app: &App,
    headers: &HeaderMap,
    token: String,
    clear: &mut Option<String>,
) -> Result<Done, LoginError> {
    let linking = app.identity.linking.as_ref().ok_or(LoginError::UnknownApp)?;
    let now = chrono::Utc::now().timestamp();
    // Verify before touching any state: a forged response consumes and stores nothing.
    let answer = linking::verify_response(&token, &linking.secret, state.settings.public_base_url.as_str(), now)?;
    let jti = match &answer {
        LinkAnswer::Linked { jti, .. } | LinkAnswer::Cancelled { jti, .. } => jti.clone(),
    };
    let pending = state
        .store
        .take_pending_link(&jti)
        .await
        .map_err(|e| LoginError::StoreUnavailable(e.to_string()))?
        .ok_or(LoginError::LinkStateMissing)?;
    // Any of the link cookies of this name may be the browser's own: a tossed one sent
    // first must not make the real one fail.
    let name = cookies::link_cookie_name(app, &jti);
    let this_browser = cookies::get_all(headers, &name)
        .take(crate::http::session::MAX_PRESENTED)
        .any(|c| cookies::same_secret(c, &pending.browser_nonce));
    if pending.app != app.name || !this_browser {
        // Someone else holding this browser's link_response must not be able to burn it:
        // the pending link goes back for its own browser.
        state
            .store
            .put_pending_link(&jti, pending)
            .await
            .map_err(|e| LoginError::StoreUnavailable(e.to_string()))?;
        return Err(LoginError::LinkBrowserMismatch);
    }
    *clear = Some(cookies::clear_link_cookie(app, &jti));
    let federated = state.settings.pseudonyms.of(&pending.facts.federated_id);
    match answer {
        LinkAnswer::Cancelled { error, .. } => {
            tracing::info!(app = app.name, federated, error, "first-time linking cancelled");
            Ok(Done::Cancelled)
        }
        LinkAnswer::Linked { person_code, .. } => {
            let linked = state
                .links
                .link_once(&app.name, &pending.facts.federated_id, &person_code, LinkSource::Linked)
                .await
                .map_err(|e| LoginError::LinkStoreUnavailable(e.to_string()))?;
            if linked != person_code {
                tracing::warn!(
                    app = app.name,
                    federated,
                    "a concurrent first-time link won; logging in as its person code"
                );
            }
            tracing::info!(
                target: "audit",
                event = "link_created",
                by = "student",
                app = app.name,
                federated,
                person = state.settings.pseudonyms.of(&linked),
                "account linked"
            );
            let subject = pending.subject;
            let identity = Identity {
                person_code: linked,
                facts: pending.facts,
            };
            Ok(Done::Linked(Box::new(identity), pending.target, subject))
        }
    }
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
    html_response(
        StatusCode::OK,
        html_page(lang, title, &format!("<h1>{title}</h1><p>{body}</p>")),
        &page_csp(),
    )
}
