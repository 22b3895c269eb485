//! "Why did this login fail" by its reference; a student's links, found and removed.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::*;
use crate::store::reports::FailureReport;

#[derive(Deserialize)]
pub(super) struct ReferenceQuery {
    #[serde(rename = "ref", default)]
    reference: String,
}

pub(super) async fn reference(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Query(q): Query<ReferenceQuery>,
) -> Response {
    let (state, session) = or_refuse!(signed_in(&admin, &headers));
    let lang = lang_of(&headers);
    let title = format!("{} {}", t(lang, "Referentie", "Reference"), q.reference.trim());
    let (status, body) = match ops::report(&state.links, &q.reference).await {
        Ok(Some(report)) => (StatusCode::OK, report_html(lang, &report)),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            error_box(t(
                lang,
                "Geen verslag onder deze referentie. Het is ouder dan support.retention, viel buiten de grens per uur, of hoort niet bij een mislukte login.",
                "No report under this reference. It is older than support.retention, was over the hour's bound, or is not a failed login.",
            )),
        ),
        Err(e) => op_failure(lang, &e),
    };
    page(lang, status, &title, Some(&session), &format!("{body}{}", back(lang)))
}

fn report_html(lang: Lang, r: &FailureReport) -> String {
    let rows = [
        (
            t(lang, "Foutcode", "Error code"),
            format!("<code>{}</code> ({})", escape(&r.code), r.status),
        ),
        (t(lang, "Tijd", "Time"), escape(&ops::readable_time(r.created_at))),
        ("App", escape(&r.app)),
        ("School (BRIN)", escape(r.school.as_deref().unwrap_or("-"))),
        (
            t(lang, "Persoon (pseudoniem)", "Person (pseudonym)"),
            escape(r.person.as_deref().unwrap_or("-")),
        ),
        (t(lang, "Instantie", "Instance"), escape(&r.instance)),
        (t(lang, "Melding", "Message"), escape(&r.message)),
    ];
    let mut html = String::from("<table class=\"facts\"><tbody>");
    for (label, value) in rows {
        html.push_str(&format!("<tr><th scope=\"row\">{label}</th><td>{value}</td></tr>"));
    }
    html.push_str("</tbody></table>");
    if !r.checks.is_empty() {
        html.push_str(&format!(
            "<h2>{}</h2><table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
            t(lang, "Controles", "Checks"),
            t(lang, "Uitkomst", "Outcome"),
            t(lang, "Controle", "Check"),
            t(lang, "Toelichting", "Detail"),
        ));
        for c in &r.checks {
            let (class, word) = if c.ok {
                ("ok", "ok")
            } else {
                ("fail", t(lang, "MISLUKT", "FAILED"))
            };
            html.push_str(&format!(
                "<tr><td class=\"{class}\">{word}</td><td><code>{}</code></td><td>{}</td></tr>",
                escape(&c.check),
                escape(&c.detail)
            ));
        }
        html.push_str("</tbody></table>");
    }
    html
}

#[derive(Deserialize)]
pub(super) struct LinksQuery {
    #[serde(default)]
    app: String,
    person_code: Option<String>,
    federated_id: Option<String>,
}

pub(super) async fn links(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Query(q): Query<LinksQuery>,
) -> Response {
    let (state, session) = or_refuse!(signed_in(&admin, &headers));
    let lang = lang_of(&headers);
    let app = or_refuse!(form_app(&state, lang, &session, &q.app));
    let title = t(lang, "Koppelingen", "Links");
    let found = ops::find_links(&state.links, &app, q.person_code.as_deref(), q.federated_id.as_deref()).await;
    let (status, body) = match found {
        Ok(links) if links.is_empty() => (
            StatusCode::OK,
            format!(
                "<p class=\"note\">{}</p>",
                t(lang, "Geen koppeling gevonden.", "No link found.")
            ),
        ),
        Ok(links) => {
            let mut html = format!(
                "<p>{} {}</p><table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\"></th></tr></thead><tbody>",
                links.len(),
                t(lang, "koppeling(en)", "link(s)"),
                t(lang, "Federatief id", "Federated id"),
                t(lang, "Persoonscode", "Person code"),
                t(lang, "Herkomst", "Source"),
                t(lang, "Gemaakt", "Created"),
                t(lang, "Laatste login", "Last login"),
            );
            for l in &links {
                html.push_str(&format!(
                    "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td><form method=\"post\" action=\"/admin/links/remove\">{}<input type=\"hidden\" name=\"app\" value=\"{}\"><input type=\"hidden\" name=\"federated_id\" value=\"{}\"><button type=\"submit\">{}</button></form></td></tr>",
                    escape(&l.federated_id),
                    escape(&l.person_code),
                    l.source.as_str(),
                    escape(&ops::readable_time(l.created_at)),
                    l.last_login_at.map(ops::readable_time).unwrap_or_else(|| t(lang, "nooit", "never").into()),
                    csrf_field(&session),
                    escape(&app.name),
                    escape(&l.federated_id),
                    t(lang, "Verwijderen", "Remove"),
                ));
            }
            html.push_str("</tbody></table>");
            html.push_str(&format!(
                "<p><small>{}</small></p>",
                t(lang, "Na het verwijderen koppelt de leerling bij de volgende login opnieuw (of volgt de regel of een import).", "After removal the student links again at the next login (or the rule or an import applies).")
            ));
            (StatusCode::OK, html)
        }
        Err(e) => op_failure(lang, &e),
    };
    page(lang, status, title, Some(&session), &format!("{body}{}", back(lang)))
}

#[derive(Deserialize)]
pub(super) struct RemoveForm {
    csrf: Option<String>,
    #[serde(default)]
    app: String,
    #[serde(default)]
    federated_id: String,
}

pub(super) async fn remove_link(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Form(form): Form<RemoveForm>,
) -> Response {
    let (state, session) = or_refuse!(signed_in_for_change(&admin, &headers, form.csrf.as_deref()));
    let lang = lang_of(&headers);
    let app = or_refuse!(form_app(&state, lang, &session, &form.app));
    let removed = ops::remove_link(
        &state.links,
        &state.settings.pseudonyms,
        &app,
        &form.federated_id,
        &session.actor(),
    )
    .await;
    let (status, body) = match removed {
        Ok(true) => (
            StatusCode::OK,
            format!(
                "<p class=\"note\" role=\"status\">{} <code>{}</code> ({}).</p>",
                t(lang, "Koppeling verwijderd:", "Link removed:"),
                escape(&form.federated_id),
                escape(&app.name)
            ),
        ),
        Ok(false) => (
            StatusCode::NOT_FOUND,
            error_box(t(
                lang,
                "Deze koppeling bestaat niet (meer).",
                "This link does not exist (any more).",
            )),
        ),
        Err(e) => op_failure(lang, &e),
    };
    page(
        lang,
        status,
        t(lang, "Koppeling verwijderen", "Remove a link"),
        Some(&session),
        &format!("{body}{}", back(lang)),
    )
}
