//! `/admin/v1/...`: the support desk's JSON API (bearer token). Schools, links, imports,
//! references; every change through [`super::ops`], which audits it with the token's name.

// The helpers that check a request answer a refusal as the finished response, made once
// per refused request: its size on the stack costs nothing worth a box.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use serde_json::json;

use super::auth::{client_of, Refusal};
use super::ops::{self, Actor, ImportOptions, OpError, SchoolChange};
use super::Admin;
use crate::config::{App, Settings};
use crate::http::AppState;

/// A JSON answer with the headers every admin answer carries.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    json_response(status, &json!({ "error": code, "message": message.to_string() }))
}

pub fn refused(refusal: &Refusal) -> Response {
    let status = match refusal {
        Refusal::Missing | Refusal::Wrong => StatusCode::UNAUTHORIZED,
        Refusal::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
        Refusal::TokenFile(_) | Refusal::Off => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut response = error(status, refusal.code(), refusal);
    match refusal {
        Refusal::Missing | Refusal::Wrong => {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"entree-bridge admin\""),
            );
        }
        Refusal::TooMany(wait) => {
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        _ => {}
    }
    response
}

fn op_error(e: &OpError) -> Response {
    let status = match e {
        OpError::Invalid(_) => StatusCode::BAD_REQUEST,
        OpError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    if let OpError::Store(e) = e {
        tracing::error!("admin: {e}");
    }
    error(status, e.code(), e)
}

/// Every `/admin/v1` request's gate, before its body is read: the bearer token must be one
/// of the token file's (its caller goes on as an [`Actor`] extension), or the answer is 401,
/// 429 or 503 at once. A body nobody may send is never waited for.
pub async fn require_token(
    State(admin): State<Arc<Admin>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let state = admin.shared.current();
    match admin.gate.bearer(&state.settings, client_of(peer), request.headers()) {
        Ok(actor) => {
            request.extensions_mut().insert(actor);
            next.run(request).await
        }
        Err(refusal) => refused(&refusal),
    }
}

/// The config in force and the caller (from the bearer token, checked by [`require_token`]).
struct Call {
    state: Arc<AppState>,
    actor: Actor,
}

fn authorize(admin: &Admin, actor: Actor) -> Call {
    Call {
        state: admin.shared.current(),
        actor,
    }
}

/// [`authorize`], and the app the path names.
fn authorize_app(admin: &Admin, actor: Actor, name: &str) -> Result<(Call, Arc<App>), Response> {
    let call = authorize(admin, actor);
    let app = app_named(&call.state.settings, name).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "unknown_app",
            format!("no [apps.{name}] in the config in force"),
        )
    })?;
    Ok((call, app))
}

pub fn app_named(settings: &Settings, name: &str) -> Option<Arc<App>> {
    settings.apps.iter().find(|a| a.name == name).cloned()
}

type Caller = Extension<Actor>;

pub async fn list_schools(
    State(admin): State<Arc<Admin>>,
    Extension(actor): Caller,
    Path(app): Path<String>,
) -> Response {
    let (call, app) = or_refuse!(authorize_app(&admin, actor, &app));
    match call.state.links.activations(Some(&app.name)).await {
        Ok(rows) => json_response(
            StatusCode::OK,
            &json!({
                "app": app.name,
                "config": app.identity.schools,
                "database": rows,
            }),
        ),
        Err(e) => op_error(&OpError::Store(e)),
    }
}

pub async fn get_school(
    State(admin): State<Arc<Admin>>,
    Extension(actor): Caller,
    Path((app, brin)): Path<(String, String)>,
) -> Response {
    let (call, app) = or_refuse!(authorize_app(&admin, actor, &app));
    match ops::school_status(&call.state.links, &app, &brin).await {
        Ok(status) => json_response(StatusCode::OK, &json!(status)),
        Err(e) => op_error(&e),
    }
}

async fn change_school(admin: &Admin, actor: Actor, app: &str, brin: &str, activate: bool) -> Response {
    let (call, app) = or_refuse!(authorize_app(admin, actor, app));
    let changed = ops::change_schools(&call.state.links, &app, &[brin.to_string()], activate, &call.actor).await;
    let (brin, change) = match changed.map(|mut v| v.pop()) {
        Ok(Some(done)) => done,
        Ok(None) => return error(StatusCode::BAD_REQUEST, "invalid_request", "no BRIN"),
        Err(e) => return op_error(&e),
    };
    let status = match change {
        SchoolChange::Activated => StatusCode::CREATED,
        SchoolChange::AlreadyActivated | SchoolChange::Deactivated => StatusCode::OK,
        SchoolChange::InConfig => StatusCode::CONFLICT,
        SchoolChange::NotActivated => StatusCode::NOT_FOUND,
    };
    let message = match change {
        SchoolChange::InConfig => format!(
            "activated by the config (apps.{}.schools), not the database: remove it there",
            app.name
        ),
        SchoolChange::NotActivated => "was not activated".into(),
        _ => "in force on every instance within 10 s".into(),
    };
    json_response(
        status,
        &json!({ "app": app.name, "brin": brin, "result": change, "message": message }),
    )
}

pub async fn put_school(
    State(admin): State<Arc<Admin>>,
    Extension(actor): Caller,
    Path((app, brin)): Path<(String, String)>,
) -> Response {
    change_school(&admin, actor, &app, &brin, true).await
}

pub async fn delete_school(
    State(admin): State<Arc<Admin>>,
    Extension(actor): Caller,
    Path((app, brin)): Path<(String, String)>,
) -> Response {
    change_school(&admin, actor, &app, &brin, false).await
}

#[derive(Deserialize)]
pub struct LinkQuery {
    person_code: Option<String>,
    federated_id: Option<String>,
}

pub async fn get_links(
    State(admin): State<Arc<Admin>>,
    Extension(actor): Caller,
    Path(app): Path<String>,
    Query(q): Query<LinkQuery>,
) -> Response {
    let (call, app) = or_refuse!(authorize_app(&admin, actor, &app));
    match ops::find_links(
        &call.state.links,
        &app,
        q.person_code.as_deref(),
        q.federated_id.as_deref(),
    )
    .await
    {
        Ok(links) => json_response(StatusCode::OK, &json!({ "app": app.name, "links": links })),
        Err(e) => op_error(&e),
    }
}

pub async fn delete_link(
    State(admin): State<Arc<Admin>>,
    Extension(actor): Caller,
    Path(app): Path<String>,
    Query(q): Query<LinkQuery>,
) -> Response {
    let (call, app) = or_refuse!(authorize_app(&admin, actor, &app));
    let Some(federated_id) = q.federated_id.as_deref().filter(|f| !f.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "federated_id is required");
    };
    let pseudonyms = &call.state.settings.pseudonyms;
    match ops::remove_link(&call.state.links, pseudonyms, &app, federated_id, &call.actor).await {
        Ok(true) => json_response(StatusCode::OK, &json!({ "app": app.name, "removed": true })),
        Ok(false) => error(StatusCode::NOT_FOUND, "not_found", "no such link"),
        Err(e) => op_error(&e),
    }
}

#[derive(Deserialize)]
pub struct ImportQuery {
    #[serde(default = "magister")]
    format: String,
    code_column: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    skip_invalid: bool,
}

fn magister() -> String {
    "magister".into()
}

pub async fn import(
    State(admin): State<Arc<Admin>>,
    Extension(actor): Caller,
    Path(app): Path<String>,
    Query(q): Query<ImportQuery>,
    body: Bytes,
) -> Response {
    let (call, app) = or_refuse!(authorize_app(&admin, actor, &app));
    let options = match ImportOptions::parse(&q.format, q.code_column.as_deref(), q.dry_run, q.skip_invalid) {
        Ok(o) => o,
        Err(e) => return op_error(&e),
    };
    match ops::import_links(
        &call.state.links,
        &app,
        body,
        &options,
        "(admin API upload)",
        &call.actor,
    )
    .await
    {
        // A file with invalid lines imports nothing without skip_invalid: 422 with the report.
        Ok(report) if report.blocked_by_invalid_lines && !options.dry_run => {
            json_response(StatusCode::UNPROCESSABLE_ENTITY, &json!(report))
        }
        Ok(report) => json_response(StatusCode::OK, &json!(report)),
        Err(e) => op_error(&e),
    }
}

pub async fn reference(
    State(admin): State<Arc<Admin>>,
    Extension(actor): Caller,
    Path(reference): Path<String>,
) -> Response {
    let call = authorize(&admin, actor);
    match ops::report(&call.state.links, &reference).await {
        Ok(Some(report)) => json_response(StatusCode::OK, &json!(report)),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no report under this reference (older than support.retention, over the hour's bound, or not a failed login)",
        ),
        Err(e) => op_error(&e),
    }
}
