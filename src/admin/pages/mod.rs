//! `/admin/`: the support desk's pages, in Dutch and English, server-rendered with no
//! external assets. Sign in with a token; then look up a reference, find and remove a link,
//! activate or deactivate a school, import a Magister file (a dry run first, then apply what
//! the report was about). Every change is a POST carrying the session's CSRF token. This
//! module holds the layout and the session checks every page uses; each area its handlers.

// The helpers that check a request answer a refusal as the finished response, made once
// per refused request: its size on the stack costs nothing worth a box.
#![allow(clippy::result_large_err)]

mod import;
mod lookup;
mod schools;
mod sign_in;

use std::sync::{Arc, OnceLock};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::api::app_named;
use super::auth::{cross_site, Session};
use super::{ops, Admin, MAX_UPLOAD_BYTES};
use crate::config::App;
use crate::http::pages::{csp_hash, html_response, Lang};
use crate::http::{cookies, AppState};
use crate::saml::xml::escape;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b}h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}code{background:#f2f2f2;padding:.1rem .3rem}table{border-collapse:collapse;width:100%}th,td{text-align:left;border-bottom:1px solid #ccc;padding:.3rem .5rem;vertical-align:top}label{display:block;margin:.4rem 0}input,select,button{font-size:1rem;padding:.3rem .5rem;max-width:100%;box-sizing:border-box}button{cursor:pointer}.ok{color:#1a6e1a}.fail{color:#a40000;font-weight:bold}.note{background:#fff6d6;padding:.5rem 1rem;border-left:4px solid #c9a400}.error{background:#fde8e8;padding:.5rem 1rem;border-left:4px solid #a40000}header{display:flex;justify-content:space-between;align-items:baseline;flex-wrap:wrap;gap:1rem}nav a{margin-right:1rem}form.inline{display:inline}table.facts{width:auto;min-width:min(24rem,100%)}table.facts th{padding-right:2rem}form{margin:.5rem 0}code{overflow-wrap:anywhere}@media (max-width:40rem){table{display:block;overflow-x:auto}}";
/// The language cookie set by the pages' language switch.
const LANG_COOKIE: &str = "eb_admin_lang";

pub fn routes(admin: Arc<Admin>) -> Router<Arc<Admin>> {
    // The upload routes take files up to MAX_UPLOAD_BYTES, once the session is known.
    let uploads = Router::new()
        .route("/admin/import", post(import::dry_run))
        .route("/admin/import/apply", post(import::apply))
        .route_layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
        .route_layer(axum::middleware::from_fn_with_state(admin, require_session));
    Router::new()
        .route("/admin", get(|| async { see_other("/admin/") }))
        .route("/admin/", get(sign_in::home))
        .route("/admin/sign-in", post(sign_in::sign_in))
        .route("/admin/sign-out", post(sign_in::sign_out))
        .route("/admin/reference", get(lookup::reference))
        .route("/admin/links", get(lookup::links))
        .route("/admin/links/remove", post(lookup::remove_link))
        .route("/admin/schools", get(schools::schools).post(schools::change_school))
        .merge(uploads)
}

fn csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        format!(
            "default-src 'none'; style-src {}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            csp_hash(STYLE)
        )
    })
}

fn t(lang: Lang, nl: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Nl => nl,
        Lang::En => en,
    }
}

fn lang_of(headers: &HeaderMap) -> Lang {
    match cookies::get(headers, LANG_COOKIE) {
        Some("en") => Lang::En,
        Some("nl") => Lang::Nl,
        _ => Lang::from_headers(headers),
    }
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// A whole page: the header (who is signed in, sign out, the language switch) and `body`.
fn page(lang: Lang, status: StatusCode, title: &str, session: Option<&Session>, body: &str) -> Response {
    let who = match session {
        Some(s) => format!(
            "<nav><a href=\"/admin/\">{}</a> <span>{} <strong>{}</strong></span> <form class=\"inline\" method=\"post\" action=\"/admin/sign-out\">{}<button type=\"submit\">{}</button></form></nav>",
            t(lang, "Overzicht", "Overview"),
            t(lang, "Ingelogd als", "Signed in as"),
            escape(&s.token_name),
            csrf_field(s),
            t(lang, "Uitloggen", "Sign out"),
        ),
        None => String::new(),
    };
    let switch = match lang {
        Lang::Nl => "<a href=\"/admin/?lang=en\" lang=\"en\">English</a>",
        Lang::En => "<a href=\"/admin/?lang=nl\" lang=\"nl\">Nederlands</a>",
    };
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · entree-bridge</title><style>{STYLE}</style></head><body><header><p><strong>entree-bridge</strong> · {}</p>{who}<p>{switch}</p></header><main><h1>{}</h1>{body}</main></body></html>\n",
        lang.code(),
        escape(title),
        t(lang, "supportdesk", "support desk"),
        escape(title),
    );
    html_response(status, html, csp())
}

fn csrf_field(session: &Session) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(&session.csrf)
    )
}

fn error_box(message: &str) -> String {
    format!("<p class=\"error\" role=\"alert\">{}</p>", escape(message))
}

fn back(lang: Lang) -> String {
    format!(
        "<p><a href=\"/admin/\">{}</a></p>",
        t(lang, "← Terug naar het overzicht", "← Back to the overview")
    )
}

/// The signed-in session, or the sign-in page to show instead.
fn signed_in(admin: &Admin, headers: &HeaderMap) -> Result<(Arc<AppState>, Arc<Session>), Response> {
    let state = admin.shared.current();
    match admin.gate.session(&state.settings, headers) {
        Some(s) => Ok((state, s)),
        None => Err(sign_in::sign_in_page(lang_of(headers), StatusCode::UNAUTHORIZED, None)),
    }
}

/// [`signed_in`] for a change: the CSRF token must be the session's, and the browser must
/// not say the request is cross-site.
fn signed_in_for_change(
    admin: &Admin,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<(Arc<AppState>, Arc<Session>), Response> {
    let (state, session) = signed_in(admin, headers)?;
    own_form(headers, &session, csrf)?;
    Ok((state, session))
}

/// The CSRF check of a change made by `session`: the page that refuses it, or nothing.
fn own_form(headers: &HeaderMap, session: &Session, csrf: Option<&str>) -> Result<(), Response> {
    if !cross_site(headers) && csrf.is_some_and(|c| session.csrf_matches(c)) {
        return Ok(());
    }
    let lang = lang_of(headers);
    tracing::warn!(
        by = session.actor().as_str(),
        "admin page: a change without a valid CSRF token was refused"
    );
    Err(page(
        lang,
        StatusCode::FORBIDDEN,
        t(lang, "Niet uitgevoerd", "Not done"),
        Some(session),
        &format!(
            "{}{}",
            error_box(t(
                lang,
                "Dit verzoek kwam niet van een formulier op deze pagina's (CSRF-controle). Er is niets veranderd; probeer het opnieuw vanaf het overzicht.",
                "This request did not come from a form on these pages (CSRF check). Nothing was changed; try again from the overview."
            )),
            back(lang)
        ),
    ))
}

/// The import routes' gate, before their (large) bodies are read: a signed-in session, or the
/// sign-in page at once.
async fn require_session(State(admin): State<Arc<Admin>>, request: Request, next: Next) -> Response {
    match signed_in(&admin, request.headers()) {
        Ok(_) => next.run(request).await,
        Err(sign_in) => sign_in,
    }
}

fn op_failure(lang: Lang, e: &ops::OpError) -> (StatusCode, String) {
    match e {
        ops::OpError::Invalid(m) => (StatusCode::BAD_REQUEST, error_box(m)),
        ops::OpError::Store(e) => {
            tracing::error!("admin page: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                error_box(t(
                    lang,
                    "De database van de bridge is nu niet bereikbaar; er is niets veranderd. Probeer het zo opnieuw.",
                    "The bridge's database cannot be reached now; nothing was changed. Try again shortly.",
                )),
            )
        }
    }
}

/// The app a form names, or the page that says there is none.
fn form_app(state: &AppState, lang: Lang, session: &Session, name: &str) -> Result<Arc<App>, Response> {
    app_named(&state.settings, name).ok_or_else(|| {
        page(
            lang,
            StatusCode::NOT_FOUND,
            t(lang, "Onbekende app", "Unknown app"),
            Some(session),
            &format!("{}{}", error_box(&format!("[apps.{name}]?")), back(lang)),
        )
    })
}
