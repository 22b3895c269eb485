//! The OpenID Connect provider's logout on the wire: RP-initiated logout at the
//! end_session endpoint (`/oidc/logout`, with the student's confirmation where the request
//! cannot prove it is the session's own client's), and the delivery of Back-Channel Logout
//! tokens after an IdP-initiated logout. The checks are `login::oidc::end_session`'s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::errors::{self, LoginError};
use super::logout::after_logout;
use super::oidc::{no_store, page, parameters, rate_limited};
use super::pages::Lang;
use super::use_case::{apply_cookies, services};
use super::{session, AppState, Shared};
use crate::config::App;
use crate::handoff::oidc::discovery;
use crate::login::oidc::{self as use_case, EndSessionQuery, OidcRefusal};
use crate::login::{self, LogoutNotice};

/// How long a Back-Channel Logout POST may take, connecting included.
pub const BACKCHANNEL_TIMEOUT: Duration = Duration::from_secs(5);

/// `GET|POST /oidc/logout` (end_session_endpoint, RP-Initiated Logout 1.0). A logout ends
/// the session at once only when the request proves it comes from the session's own client:
/// an `id_token_hint` whose `sid` is this browser's session. Anything else (no hint, a hint of
/// another session) could be a page of anyone's that sends the browser here, so the student
/// confirms on a page of the bridge (RP-Initiated Logout 1.0, 2), whose POST carries a value
/// only that page and a SameSite=Strict cookie know.
pub async fn logout(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let state = shared.current();
    if let Some(limited) = rate_limited(&state, peer, req.headers()) {
        return limited;
    }
    let lang = Lang::from_headers(req.headers());
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    let Some(raw) = parameters(&parts, body).await else {
        return no_store(page(OidcRefusal::RequestMalformed));
    };
    let Some((query, confirm)) = end_session_query(&raw) else {
        return no_store(page(OidcRefusal::RequestMalformed));
    };
    let end = match use_case::end_session(services(&state), &state.settings.apps, &query) {
        Ok(end) => end,
        Err(e) => {
            tracing::warn!(client = query.client_id, "RP-initiated logout refused");
            return no_store(page(e));
        }
    };
    // Confirmed by the student on the bridge's own page: the form's value is the cookie's.
    let confirmed = parts.method == Method::POST
        && confirm.as_deref().is_some_and(|given| {
            super::cookies::get(headers, LOGOUT_CONFIRM_COOKIE)
                .is_some_and(|c| c.len() == given.len() && openssl::memcmp::eq(c.as_bytes(), given.as_bytes()))
        });
    let response = match end.app {
        Some(app) => {
            let current = match session::current_with_id(&state, &app, headers).await {
                Ok(s) => s,
                Err(e) => return LoginError::StoreUnavailable(e.to_string()).into_response(),
            };
            let hinted_this_session = match (&current, &end.hint_sid) {
                (Some((id, _)), Some(sid)) => crate::handoff::oidc::tokens::sid_of(id) == *sid,
                _ => false,
            };
            if current.is_some() && !hinted_this_session && !confirmed {
                return no_store(confirm_page(&state, lang, &query, Some(&app.display_name)));
            }
            let presented = session::presented_ids(&app, headers);
            let answer = login::logout_to(
                services(&state),
                &app,
                current.map(|(_, s)| s.subject),
                &presented,
                end.return_to,
            )
            .await;
            let mut response = match answer.result {
                Ok(next) => after_logout(&app, next, lang),
                Err(e) => LoginError::from(e).into_response(),
            };
            apply_cookies(&app, &mut response, &answer.cookies);
            errors::name_app(&mut response, &app);
            response
        }
        // No client named: every OP session this browser holds ends here, once confirmed (no
        // Single Logout: without a client there is no app to run it for).
        None => {
            let oidc_apps: Vec<&Arc<App>> = state
                .settings
                .apps
                .iter()
                .filter(|a| a.handoff.oidc.is_some())
                .collect();
            let holds_any = oidc_apps.iter().any(|a| !session::presented_ids(a, headers).is_empty());
            if holds_any && !confirmed {
                return no_store(confirm_page(&state, lang, &query, None));
            }
            let mut cleared = Vec::new();
            for app in oidc_apps {
                for id in session::presented_ids(app, headers) {
                    if let Err(e) = state.store.remove_session(id).await {
                        return LoginError::StoreUnavailable(e.to_string()).into_response();
                    }
                }
                cleared.push(app.clone());
            }
            let mut response = super::logout::logged_out_everywhere_page(lang);
            for app in &cleared {
                apply_cookies(app, &mut response, &[login::CookieChange::ClearSession]);
            }
            response
        }
    };
    no_store(response)
}

/// The cookie that ties a logout confirmation to the page that asked for it.
const LOGOUT_CONFIRM_COOKIE: &str = "eb_logout_confirm";

/// "Do you want to log out?": a form that POSTs the request's parameters back with a fresh
/// value, which the SameSite=Strict cookie set here carries too (another site's form cannot).
/// `app_name`: the app whose session ends, `None` for every app's.
fn confirm_page(state: &AppState, lang: Lang, query: &EndSessionQuery, app_name: Option<&str>) -> Response {
    use crate::saml::xml::escape;
    let token = crate::keys::random_token();
    let mut fields = format!("<input type=\"hidden\" name=\"confirm\" value=\"{token}\">");
    for (name, value) in [
        ("id_token_hint", &query.id_token_hint),
        ("client_id", &query.client_id),
        ("post_logout_redirect_uri", &query.post_logout_redirect_uri),
        ("state", &query.state),
    ] {
        if let Some(v) = value {
            fields.push_str(&format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                escape(v)
            ));
        }
    }
    let (title, text, button) = match (lang, app_name) {
        (Lang::Nl, Some(app)) => (
            "Uitloggen?",
            format!("Wil je uitloggen bij {}?", escape(app)),
            "Uitloggen",
        ),
        (Lang::Nl, None) => (
            "Uitloggen?",
            "Wil je uitloggen bij de apps die via deze bridge inloggen?".to_string(),
            "Uitloggen",
        ),
        (Lang::En, Some(app)) => (
            "Log out?",
            format!("Do you want to log out of {}?", escape(app)),
            "Log out",
        ),
        (Lang::En, None) => (
            "Log out?",
            "Do you want to log out of the apps that sign in through this bridge?".to_string(),
            "Log out",
        ),
    };
    let body = format!(
        "<h1>{title}</h1><p>{text}</p><form method=\"post\" action=\"{}\">{fields}<p><button type=\"submit\">{button}</button></p></form>",
        discovery::LOGOUT_PATH
    );
    let mut response = super::pages::html_response(
        StatusCode::OK,
        super::pages::html_page(lang, title, &body),
        &super::pages::page_csp(),
    );
    let secure = if state.settings.public_base_url.scheme() == "https" {
        " Secure;"
    } else {
        ""
    };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LOGOUT_CONFIRM_COOKIE}={token}; Path={}; Max-Age=600; HttpOnly;{secure} SameSite=Strict",
        discovery::LOGOUT_PATH
    )) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// The end_session parameters and the confirmation value, each at most once (`None`: one
/// given twice); an empty value counts as absent.
fn end_session_query(raw: &str) -> Option<(EndSessionQuery, Option<String>)> {
    let mut q = EndSessionQuery::default();
    let mut confirm = None;
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        let slot = match k.as_ref() {
            "id_token_hint" => &mut q.id_token_hint,
            "client_id" => &mut q.client_id,
            "post_logout_redirect_uri" => &mut q.post_logout_redirect_uri,
            "state" => &mut q.state,
            "confirm" => &mut confirm,
            _ => continue,
        };
        if slot.is_some() {
            return None;
        }
        if !v.is_empty() {
            *slot = Some(v.into_owned());
        }
    }
    Some((q, confirm))
}

/// Delivers Back-Channel Logout tokens in the background (the IdP's browser does not wait
/// for the apps), each POST bounded by [`BACKCHANNEL_TIMEOUT`], its outcome counted in
/// `entree_bridge_oidc_backchannel_logout_total{app,result}` and failures logged.
pub(super) fn deliver(state: &AppState, notices: Vec<LogoutNotice>) {
    let Some(client) = state.backchannel.clone() else {
        return;
    };
    for notice in notices {
        let client = client.clone();
        let metrics = state.metrics.clone();
        tokio::spawn(async move {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("logout_token", &notice.logout_token)
                .finish();
            let request = axum::http::Request::post(notice.uri.as_str())
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::CACHE_CONTROL, "no-store")
                .body(Body::from(body));
            let result = match request {
                Err(e) => Err(format!("cannot build the request: {e}")),
                Ok(request) => match tokio::time::timeout(BACKCHANNEL_TIMEOUT, client.request(request)).await {
                    Err(_) => Err(format!("no answer within {} s", BACKCHANNEL_TIMEOUT.as_secs())),
                    Ok(Err(e)) => Err(format!("cannot reach it: {e}")),
                    Ok(Ok(r)) if r.status().is_success() => Ok(()),
                    Ok(Ok(r)) => Err(format!("it answered {}", r.status())),
                },
            };
            match result {
                Ok(()) => {
                    metrics.oidc_backchannel(&notice.app, "ok");
                    tracing::info!(app = notice.app, "back-channel logout delivered");
                }
                Err(why) => {
                    metrics.oidc_backchannel(&notice.app, "error");
                    tracing::warn!(
                        app = notice.app,
                        uri = notice.uri.as_str(),
                        "back-channel logout not delivered: {why}"
                    );
                }
            }
        });
    }
}
