//! The admin listener (`[admin]`): the support desk's API at `/admin/v1/...` (bearer tokens)
//! and its pages at `/admin/` (a signed-in session, CSRF-protected), on a port of their own
//! so that nothing of it is reachable through the public one. Both run the operations of
//! [`ops`], which the command line runs too.

/// The value of a check a handler makes, or the refusal (a finished response) it returns
/// at once: every admin handler begins with the same few checks.
macro_rules! or_refuse {
    ($check:expr) => {
        match $check {
            Ok(value) => value,
            Err(refusal) => return refusal,
        }
    };
}

pub mod api;
pub mod auth;
pub mod ops;
mod pages;
mod tokens;
pub mod upload;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use crate::http::{rate_limit, Shared};

/// The largest body the admin listener reads: a Magister file of a large school board
/// (some 60 bytes a student) fits many times over.
pub const MAX_UPLOAD_BYTES: usize = 16 * 1024 * 1024;
/// The largest body of every other admin request (a sign-in or a form of a few fields).
pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// Requests per client address and minute on the admin listener (pages and API alike), and
/// the burst allowed at once. Support work is a few requests a minute; a script importing
/// per school stays well inside.
pub const REQUESTS_PER_MINUTE: u32 = 600;
pub const REQUEST_BURST: u32 = 120;

/// What the admin listener's handlers share: the bridge's state and who may come in.
pub struct Admin {
    pub shared: Arc<Shared>,
    gate: auth::Gate,
    requests: rate_limit::RateLimiter,
}

impl Admin {
    pub fn new(shared: Arc<Shared>) -> Arc<Self> {
        Arc::new(Admin {
            shared,
            gate: auth::Gate::default(),
            requests: rate_limit::RateLimiter::new(crate::config::RateLimit {
                per_minute: REQUESTS_PER_MINUTE,
                burst: REQUEST_BURST,
                // The admin listener is on loopback: exempting it would exempt everyone.
                exempt_loopback: false,
            }),
        })
    }
}

pub fn router(admin: Arc<Admin>) -> Router {
    let api = Router::new()
        .route("/admin/v1/apps/{app}/schools", get(api::list_schools))
        .route(
            "/admin/v1/apps/{app}/schools/{brin}",
            get(api::get_school).put(api::put_school).delete(api::delete_school),
        )
        .route(
            "/admin/v1/apps/{app}/links",
            get(api::get_links).delete(api::delete_link),
        )
        .route(
            "/admin/v1/apps/{app}/links/import",
            post(api::import).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)),
        )
        .route("/admin/v1/references/{reference}", get(api::reference))
        .route_layer(axum::middleware::from_fn_with_state(admin.clone(), api::require_token));
    Router::new()
        .merge(api)
        .merge(pages::routes(admin.clone()))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(admin.clone(), limit_requests))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        // Outermost, as on the public listener: every line a desk request writes (an audit
        // line of a removed link, a school activated) carries its correlation_id.
        .layer(axum::middleware::from_fn(crate::http::request_id::request_span))
        .with_state(admin)
}

/// `/metrics`, when `admin.metrics` moved it here: no token, like a scrape of any private
/// port (the counters hold no secrets, only what the public listener should not show).
async fn metrics(State(admin): State<Arc<Admin>>) -> Response {
    let state = admin.shared.current();
    if state.settings.admin.as_ref().is_some_and(|a| a.metrics) {
        crate::http::metrics_response(&state)
    } else {
        not_found().await
    }
}

async fn not_found() -> Response {
    api::json_response(StatusCode::NOT_FOUND, &json!({ "error": "not_found" }))
}

/// Every request counts against its client's budget before any handler runs.
async fn limit_requests(
    State(admin): State<Arc<Admin>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    // The peer itself: the admin listener believes no X-Forwarded-For (see `auth::client_of`).
    let client = rate_limit::Client {
        ip: peer.ip().to_canonical(),
        via_proxy: false,
    };
    let metrics = admin.shared.current().metrics.clone();
    if let Err(wait) = admin.requests.check(client) {
        metrics.admin_refused(StatusCode::TOO_MANY_REQUESTS.as_u16());
        return api::refused(&auth::Refusal::TooMany(wait));
    }
    // A body announced larger than its route takes is refused before a byte of it is read
    // (the body limits alone would read up to the limit first). Chunked bodies meet those.
    let path = request.uri().path();
    let limit = if path == "/admin/import" || path.ends_with("/links/import") {
        MAX_UPLOAD_BYTES
    } else {
        MAX_FORM_BYTES
    };
    let announced = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return api::json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({ "error": "too_large", "message": format!("this request takes at most {limit} bytes") }),
        );
    }
    let response = next.run(request).await;
    // Refused callers (no or a wrong token, too many failures, cross-site forms): a run of
    // them is someone guessing tokens.
    if matches!(response.status().as_u16(), 401 | 403 | 429) {
        metrics.admin_refused(response.status().as_u16());
    }
    response
}

/// Serves the admin listener until `shutdown`: plain http, the bridge's own accept loop with
/// its connection caps and deadlines.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router(Admin::new(shared.clone()));
    crate::http::serve_on(listener, shared, router, shutdown, crate::http::Listener::Admin).await
}
