//! A Magister file uploaded: the dry run's report (nothing stored, the file kept with the
//! session), then Apply, which writes exactly what was reported, once.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::*;
use crate::admin::auth::PendingImport;
use crate::admin::ops::{ImportOptions, ImportReport};
use crate::admin::upload;

fn import_report_html(lang: Lang, report: &ImportReport) -> String {
    let lines = |v: &[ops::LineProblem]| {
        v.iter()
            .map(|p| format!("<li>{} {}: {}</li>", t(lang, "regel", "line"), p.line, escape(&p.why)))
            .collect::<String>()
    };
    let changed = report
        .changed
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "<table class=\"facts\"><tbody><tr><th scope=\"row\">{}</th><td>{}</td></tr><tr><th scope=\"row\">{}</th><td>{}</td></tr><tr><th scope=\"row\">{}</th><td>{}{}</td></tr><tr><th scope=\"row\">{}</th><td>{}</td></tr><tr><th scope=\"row\">{}</th><td>{}</td></tr></tbody></table>{}{}",
        t(lang, "Nieuw", "Added"),
        report.added,
        t(lang, "Ongewijzigd", "Unchanged"),
        report.unchanged,
        t(lang, "Gewijzigd", "Changed"),
        report.changed.len(),
        if changed.is_empty() { String::new() } else { format!(" ({} {changed})", t(lang, "regels", "lines")) },
        t(lang, "Conflicterend", "Conflicting"),
        report.conflicting.len(),
        t(lang, "Ongeldig", "Invalid"),
        report.invalid.len(),
        if report.conflicting.is_empty() { String::new() } else { format!("<h2>{}</h2><ul>{}</ul>", t(lang, "Conflicterende regels", "Conflicting lines"), lines(&report.conflicting)) },
        if report.invalid.is_empty() { String::new() } else { format!("<h2>{}</h2><ul>{}</ul>", t(lang, "Ongeldige regels", "Invalid lines"), lines(&report.invalid)) },
    )
}

pub(super) async fn dry_run(State(admin): State<Arc<Admin>>, headers: HeaderMap, body: Bytes) -> Response {
    let lang = lang_of(&headers);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // The session first (the route's gate checked it before the body came), then the form.
    let (state, session) = or_refuse!(signed_in(&admin, &headers));
    let parts = upload::parse(content_type, &body);
    if let Err(refused) = own_form(
        &headers,
        &session,
        parts.as_ref().ok().and_then(|p| upload::field(p, "csrf")),
    ) {
        return refused;
    }
    let title = t(lang, "Proefimport", "Dry run");
    let parts = match parts {
        Ok(p) => p,
        Err(e) => {
            return page(
                lang,
                StatusCode::BAD_REQUEST,
                title,
                Some(&session),
                &format!("{}{}", error_box(&e.to_string()), back(lang)),
            )
        }
    };
    let app = or_refuse!(form_app(
        &state,
        lang,
        &session,
        upload::field(&parts, "app").unwrap_or("")
    ));
    let format = upload::field(&parts, "format").unwrap_or("magister");
    let code_column = upload::field(&parts, "code_column").filter(|_| format == "magister");
    let skip_invalid = upload::field(&parts, "skip_invalid") == Some("true");
    let Some(file) = parts.iter().find(|p| p.name == "file" && p.file_name.is_some()) else {
        return page(
            lang,
            StatusCode::BAD_REQUEST,
            title,
            Some(&session),
            &format!(
                "{}{}",
                error_box(t(lang, "Kies een bestand.", "Choose a file.")),
                back(lang)
            ),
        );
    };
    let options = match ImportOptions::parse(format, code_column, true, skip_invalid) {
        Ok(o) => o,
        Err(e) => {
            let (status, html) = op_failure(lang, &e);
            return page(lang, status, title, Some(&session), &format!("{html}{}", back(lang)));
        }
    };
    let file_name = file.file_name.clone().unwrap_or_default();
    let label = format!("{file_name} (admin page upload)");
    let report = match ops::import_links(
        &state.links,
        &app,
        file.data.clone(),
        &options,
        &label,
        &session.actor(),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            let (status, html) = op_failure(lang, &e);
            return page(lang, status, title, Some(&session), &format!("{html}{}", back(lang)));
        }
    };
    let blocked = !report.invalid.is_empty() && !skip_invalid;
    let id = crate::keys::random_token();
    let apply = if blocked {
        error_box(t(lang, "Het bestand heeft ongeldige regels: zo wordt er niets geïmporteerd. Verbeter het bestand, of kies 'Ongeldige regels overslaan'.", "The file has invalid lines: as it is, nothing would be imported. Fix the file, or choose 'Skip invalid lines'."))
    } else {
        format!(
            "<form method=\"post\" action=\"/admin/import/apply\">{}<input type=\"hidden\" name=\"id\" value=\"{}\"><button type=\"submit\">{}</button></form>",
            csrf_field(&session),
            escape(&id),
            t(lang, "Toepassen", "Apply"),
        )
    };
    // The file is kept for the session (one at a time) so Apply writes what was reported.
    let mut options = options;
    options.dry_run = false;
    admin.gate.keep_import(
        &session,
        PendingImport {
            id,
            app: app.name.clone(),
            file_name: file_name.clone(),
            options,
            bytes: file.data.clone(),
        },
    );
    let html = format!(
        "<p class=\"note\" role=\"status\">{} <code>{}</code> → {}. {}</p>{}{}{}",
        t(lang, "Bestand", "File"),
        escape(&file_name),
        escape(&app.name),
        t(lang, "Er is nog niets opgeslagen.", "Nothing has been stored yet."),
        import_report_html(lang, &report),
        apply,
        back(lang),
    );
    page(lang, StatusCode::OK, title, Some(&session), &html)
}

#[derive(Deserialize)]
pub(super) struct ApplyForm {
    csrf: Option<String>,
    #[serde(default)]
    id: String,
}

pub(super) async fn apply(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Form(form): Form<ApplyForm>,
) -> Response {
    let (state, session) = or_refuse!(signed_in_for_change(&admin, &headers, form.csrf.as_deref()));
    let lang = lang_of(&headers);
    let title = t(lang, "Import", "Import");
    let Some(pending) = admin.gate.take_import(&session, &form.id) else {
        return page(
            lang,
            StatusCode::CONFLICT,
            title,
            Some(&session),
            &format!(
                "{}{}",
                error_box(t(
                    lang,
                    "Deze proefimport is al toegepast of vervangen. Upload het bestand opnieuw.",
                    "This dry run was applied or replaced already. Upload the file again."
                )),
                back(lang)
            ),
        );
    };
    let app = or_refuse!(form_app(&state, lang, &session, &pending.app));
    let label = format!("{} (admin page upload)", pending.file_name);
    let (status, html) = match ops::import_links(
        &state.links,
        &app,
        pending.bytes.clone(),
        &pending.options,
        &label,
        &session.actor(),
    )
    .await
    {
        Ok(report) if report.written => (
            StatusCode::OK,
            format!(
                "<p class=\"note\" role=\"status\">{} <code>{}</code> → {}.</p>{}",
                t(lang, "Geïmporteerd:", "Imported:"),
                escape(&pending.file_name),
                escape(&app.name),
                import_report_html(lang, &report)
            ),
        ),
        Ok(report) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "{}{}",
                error_box(t(lang, "Er is niets geïmporteerd.", "Nothing was imported.")),
                import_report_html(lang, &report)
            ),
        ),
        Err(e) => op_failure(lang, &e),
    };
    page(lang, status, title, Some(&session), &format!("{html}{}", back(lang)))
}
