//! Signing in with a token, the overview (the forms of every area), signing out.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::*;
use crate::admin::auth::{client_of, Refusal};

pub(super) fn sign_in_page(lang: Lang, status: StatusCode, problem: Option<&str>) -> Response {
    let body = format!(
        "{}<p>{}</p><form method=\"post\" action=\"/admin/sign-in\"><label for=\"token\">{}</label><input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required size=\"50\"> <button type=\"submit\">{}</button></form>",
        problem.map(error_box).unwrap_or_default(),
        t(
            lang,
            "Log in met een beheertoken uit admin.token_file. Het token wordt niet in de browser bewaard; de sessie eindigt na 30 minuten zonder gebruik.",
            "Sign in with an admin token from admin.token_file. The token is not kept in the browser; the session ends after 30 minutes without use."
        ),
        t(lang, "Beheertoken", "Admin token"),
        t(lang, "Inloggen", "Sign in"),
    );
    page(lang, status, t(lang, "Inloggen", "Sign in"), None, &body)
}

#[derive(Deserialize)]
pub(super) struct LangQuery {
    lang: Option<String>,
}

pub(super) async fn home(State(admin): State<Arc<Admin>>, headers: HeaderMap, Query(q): Query<LangQuery>) -> Response {
    // The language switch: remembered in a cookie, then the page without the parameter.
    if let Some(lang) = q.lang.as_deref().filter(|l| matches!(*l, "nl" | "en")) {
        let mut response = see_other("/admin/");
        let cookie = format!("{LANG_COOKIE}={lang}; Path=/admin; SameSite=Strict; Max-Age=31536000");
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, v);
        }
        return response;
    }
    let lang = lang_of(&headers);
    let state = admin.shared.current();
    let Some(session) = admin.gate.session(&state.settings, &headers) else {
        return sign_in_page(lang, StatusCode::OK, None);
    };
    let apps = app_options(&state);
    let csrf = csrf_field(&session);
    let body = format!(
        concat!(
            "<h2 id=\"h-reference\">{ref_h}</h2><p>{ref_p}</p>",
            "<form method=\"get\" action=\"/admin/reference\" aria-labelledby=\"h-reference\"><label for=\"ref\">{ref_l}</label><input id=\"ref\" name=\"ref\" required pattern=\"[0-9a-fA-F]{{1,64}}\" size=\"20\"> <button type=\"submit\">{look}</button></form>",
            "<h2 id=\"h-links\">{links_h}</h2><p>{links_p}</p>",
            "<form method=\"get\" action=\"/admin/links\" aria-labelledby=\"h-links\"><label for=\"links-app\">App</label><select id=\"links-app\" name=\"app\">{apps}</select>",
            "<label for=\"person_code\">{code_l}</label><input id=\"person_code\" name=\"person_code\" size=\"30\">",
            "<label for=\"federated_id\">{fid_l}</label><input id=\"federated_id\" name=\"federated_id\" size=\"50\"> <button type=\"submit\">{search}</button></form>",
            "<h2 id=\"h-schools\">{schools_h}</h2><p>{schools_p}</p>",
            "<form method=\"post\" action=\"/admin/schools\" aria-labelledby=\"h-schools\">{csrf}<label for=\"schools-app\">App</label><select id=\"schools-app\" name=\"app\">{apps}</select>",
            "<label for=\"brin\">BRIN</label><input id=\"brin\" name=\"brin\" required pattern=\"[0-9A-Za-z]{{4}}([0-9A-Za-z]{{2}})?\" size=\"8\"> ",
            "<button type=\"submit\" name=\"action\" value=\"activate\">{activate}</button> <button type=\"submit\" name=\"action\" value=\"deactivate\">{deactivate}</button></form>",
            "<p>{list_p} {app_links}</p>",
            "<h2 id=\"h-import\">{import_h}</h2><p>{import_p}</p>",
            "<form method=\"post\" action=\"/admin/import\" enctype=\"multipart/form-data\" aria-labelledby=\"h-import\">{csrf}<label for=\"import-app\">App</label><select id=\"import-app\" name=\"app\">{apps}</select>",
            "<label for=\"format\">{format_l}</label><select id=\"format\" name=\"format\"><option value=\"magister\">Magister (stamnr;idgebr;externeid;realmid)</option><option value=\"csv\">CSV (federated_id,person_code)</option></select>",
            "<label for=\"code_column\">{column_l}</label><select id=\"code_column\" name=\"code_column\"><option value=\"stamnr\">stamnr</option><option value=\"idgebr\">idgebr</option><option value=\"externeid\">externeid</option></select>",
            "<label><input type=\"checkbox\" name=\"skip_invalid\" value=\"true\"> {skip_l}</label>",
            "<label for=\"file\">{file_l}</label><input id=\"file\" name=\"file\" type=\"file\" required accept=\".csv,.txt,text/csv,text/plain\"> <button type=\"submit\">{dry}</button></form>",
        ),
        ref_h = t(lang, "Waarom lukte een login niet?", "Why did a login fail?"),
        ref_p = t(lang, "Vul de referentie in die op de foutpagina van de leerling staat. Het verslag toont elke controle van die login, van elke instantie.", "Enter the reference shown on the student's error page. The report lists every check of that login, from any instance."),
        ref_l = t(lang, "Referentie", "Reference"),
        look = t(lang, "Opzoeken", "Look up"),
        links_h = t(lang, "Koppeling van een leerling zoeken", "Find a student's link"),
        links_p = t(lang, "Zoek op de persoonscode van de app of op het federatieve id (nlEduPersonRealId). Vul één van de twee in.", "Search by the app's person code or by the federated id (nlEduPersonRealId). Fill in one of the two."),
        code_l = t(lang, "Persoonscode", "Person code"),
        fid_l = t(lang, "Federatief id", "Federated id"),
        search = t(lang, "Zoeken", "Search"),
        schools_h = t(lang, "School activeren of deactiveren", "Activate or deactivate a school"),
        schools_p = t(lang, "Binnen 10 seconden van kracht op elke instantie. Scholen uit de configuratie (apps.X.schools) kunnen alleen daar worden verwijderd.", "In force on every instance within 10 seconds. Schools from the config (apps.X.schools) can only be removed there."),
        activate = t(lang, "Activeren", "Activate"),
        deactivate = t(lang, "Deactiveren", "Deactivate"),
        list_p = t(lang, "Geactiveerde scholen per app:", "Activated schools by app:"),
        app_links = app_school_links(&state),
        import_h = t(lang, "Magister-bestand importeren", "Import a Magister file"),
        import_p = t(lang, "Eerst ziet u wat er zou veranderen (er wordt niets opgeslagen); daarna kiest u Toepassen.", "First you see what would change (nothing is stored); then you choose Apply."),
        format_l = t(lang, "Bestandsformaat", "File format"),
        column_l = t(lang, "Kolom met de persoonscode (alleen Magister)", "Column with the person code (Magister only)"),
        skip_l = t(lang, "Ongeldige regels overslaan (anders wordt bij een ongeldige regel niets geïmporteerd)", "Skip invalid lines (otherwise an invalid line stops the whole import)"),
        file_l = t(lang, "Bestand", "File"),
        dry = t(lang, "Proefimport (niets opslaan)", "Dry run (store nothing)"),
        apps = apps,
        csrf = csrf,
    );
    page(
        lang,
        StatusCode::OK,
        t(lang, "Overzicht", "Overview"),
        Some(&session),
        &body,
    )
}

fn app_options(state: &AppState) -> String {
    state
        .settings
        .apps
        .iter()
        .map(|a| format!("<option value=\"{0}\">{0}</option>", escape(&a.name)))
        .collect()
}

fn app_school_links(state: &AppState) -> String {
    state
        .settings
        .apps
        .iter()
        .map(|a| format!("<a href=\"/admin/schools?app={0}\">{0}</a>", escape(&a.name)))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Deserialize)]
pub(super) struct SignInForm {
    #[serde(default)]
    token: String,
}

pub(super) async fn sign_in(
    State(admin): State<Arc<Admin>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let lang = lang_of(&headers);
    let state = admin.shared.current();
    if cross_site(&headers) {
        return sign_in_page(
            lang,
            StatusCode::FORBIDDEN,
            Some(t(
                lang,
                "Inloggen kan alleen vanaf deze pagina.",
                "Signing in only works from this page.",
            )),
        );
    }
    let client = client_of(peer);
    match admin.gate.sign_in(&state.settings, client, &form.token) {
        Ok((session, cookie)) => {
            tracing::info!(target: "audit", event = "admin_signed_in", by = session.actor().as_str(), "signed in to the admin pages");
            let mut response = see_other("/admin/");
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            response
        }
        Err(refusal) => {
            let (status, message) = match &refusal {
                Refusal::TooMany(_) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    t(
                        lang,
                        "Te veel mislukte pogingen vanaf dit adres. Wacht een minuut.",
                        "Too many failed attempts from this address. Wait a minute.",
                    ),
                ),
                Refusal::TokenFile(_) | Refusal::Off => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    t(
                        lang,
                        "Het tokenbestand kan niet worden gelezen; zie het log van de bridge.",
                        "The token file cannot be read; see the bridge's log.",
                    ),
                ),
                Refusal::Missing | Refusal::Wrong => (
                    StatusCode::UNAUTHORIZED,
                    t(
                        lang,
                        "Dit token is onbekend of ingetrokken.",
                        "This token is unknown or revoked.",
                    ),
                ),
            };
            let mut response = sign_in_page(lang, status, Some(message));
            if let Refusal::TooMany(wait) = refusal {
                if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            response
        }
    }
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    csrf: Option<String>,
}

pub(super) async fn sign_out(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let session = match signed_in_for_change(&admin, &headers, form.csrf.as_deref()) {
        Ok((_, session)) => session,
        Err(refused) => return refused,
    };
    let cookie = admin.gate.sign_out(&headers);
    tracing::info!(target: "audit", event = "admin_signed_out", by = session.actor().as_str(), "signed out of the admin pages");
    let mut response = see_other("/admin/");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}
