//! A school's activation of an app: the list (config and database), activate, deactivate.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::*;
use crate::admin::ops::SchoolChange;

#[derive(Deserialize)]
pub(super) struct SchoolsQuery {
    #[serde(default)]
    app: String,
}

pub(super) async fn schools(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Query(q): Query<SchoolsQuery>,
) -> Response {
    let (state, session) = or_refuse!(signed_in(&admin, &headers));
    let lang = lang_of(&headers);
    let app = or_refuse!(form_app(&state, lang, &session, &q.app));
    let (status, body) = match state.links.activations(Some(&app.name)).await {
        Ok(rows) => {
            let mut html = format!(
                "<table><thead><tr><th scope=\"col\">BRIN</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\"></th></tr></thead><tbody>",
                t(lang, "Bron", "Source"),
                t(lang, "Door", "By"),
                t(lang, "Sinds", "Since"),
            );
            for s in &app.identity.schools {
                html.push_str(&format!(
                    "<tr><td><code>{}</code></td><td>{} (apps.{}.schools)</td><td>-</td><td>-</td><td></td></tr>",
                    escape(s),
                    t(lang, "configuratie", "config"),
                    escape(&app.name)
                ));
            }
            for a in &rows {
                html.push_str(&format!(
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td><form method=\"post\" action=\"/admin/schools\">{}<input type=\"hidden\" name=\"app\" value=\"{}\"><input type=\"hidden\" name=\"brin\" value=\"{}\"><button type=\"submit\" name=\"action\" value=\"deactivate\">{}</button></form></td></tr>",
                    escape(&a.brin),
                    t(lang, "database", "database"),
                    escape(&a.activated_by),
                    escape(&ops::readable_time(a.activated_at)),
                    csrf_field(&session),
                    escape(&app.name),
                    escape(&a.brin),
                    t(lang, "Deactiveren", "Deactivate"),
                ));
            }
            html.push_str("</tbody></table>");
            (StatusCode::OK, html)
        }
        Err(e) => op_failure(lang, &ops::OpError::Store(e)),
    };
    let title = format!("{} {}", t(lang, "Scholen van", "Schools of"), app.name);
    page(lang, status, &title, Some(&session), &format!("{body}{}", back(lang)))
}

#[derive(Deserialize)]
pub(super) struct SchoolForm {
    csrf: Option<String>,
    #[serde(default)]
    app: String,
    #[serde(default)]
    brin: String,
    #[serde(default)]
    action: String,
}

pub(super) async fn change_school(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Form(form): Form<SchoolForm>,
) -> Response {
    let (state, session) = or_refuse!(signed_in_for_change(&admin, &headers, form.csrf.as_deref()));
    let lang = lang_of(&headers);
    let app = or_refuse!(form_app(&state, lang, &session, &form.app));
    let activate = form.action == "activate";
    let done = ops::change_schools(
        &state.links,
        &app,
        std::slice::from_ref(&form.brin),
        activate,
        &session.actor(),
    )
    .await;
    let (status, body) = match done.map(|mut v| v.pop()) {
        Ok(Some((brin, change))) => {
            let (status, text) = match change {
                SchoolChange::Activated => (
                    StatusCode::OK,
                    t(
                        lang,
                        "is geactiveerd; binnen 10 seconden van kracht op elke instantie.",
                        "is activated; in force on every instance within 10 seconds.",
                    ),
                ),
                SchoolChange::AlreadyActivated => {
                    (StatusCode::OK, t(lang, "was al geactiveerd.", "was activated already."))
                }
                SchoolChange::Deactivated => (
                    StatusCode::OK,
                    t(
                        lang,
                        "is gedeactiveerd; binnen 10 seconden van kracht op elke instantie.",
                        "is deactivated; in force on every instance within 10 seconds.",
                    ),
                ),
                SchoolChange::InConfig => (
                    StatusCode::CONFLICT,
                    t(
                        lang,
                        "staat in de configuratie (apps.X.schools), niet in de database: verwijder hem daar.",
                        "is in the config (apps.X.schools), not the database: remove it there.",
                    ),
                ),
                SchoolChange::NotActivated => (
                    StatusCode::NOT_FOUND,
                    t(lang, "was niet geactiveerd.", "was not activated."),
                ),
            };
            let class = if status == StatusCode::OK { "note" } else { "error" };
            (status, format!("<p class=\"{class}\" role=\"status\">BRIN <code>{}</code> ({}) {text}</p><p><a href=\"/admin/schools?app={}\">{}</a></p>", escape(&brin), escape(&app.name), escape(&app.name), t(lang, "Alle scholen van deze app", "All schools of this app")))
        }
        Ok(None) => (StatusCode::BAD_REQUEST, error_box("BRIN?")),
        Err(e) => op_failure(lang, &e),
    };
    let title = if activate {
        t(lang, "School activeren", "Activate a school")
    } else {
        t(lang, "School deactiveren", "Deactivate a school")
    };
    page(lang, status, title, Some(&session), &format!("{body}{}", back(lang)))
}
