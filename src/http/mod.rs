//! The HTTP face of the bridge: router, per-app SAML routes, global routes, error pages.

mod acs;
pub mod cookies;
pub mod errors;
mod link_complete;
mod logout;
pub mod pages;
pub mod proxy;
pub mod resolve;
mod saml_routes;
pub mod session;
pub mod target;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::config::Settings;
use crate::store::links::LinkStore;
use crate::store::LoginStateStore;

/// Largest request body the bridge reads (an ACS POST is a few tens of KiB).
pub const MAX_BODY_BYTES: usize = 512 * 1024;

/// Everything a request handler needs.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn LoginStateStore>,
    pub links: LinkStore,
    pub metrics: Metrics,
    /// Pooled upstream clients of the apps in headers mode, by app name.
    pub upstreams: std::collections::HashMap<String, proxy::UpstreamClient>,
    /// Documents that change only with the config, rendered once when it is loaded.
    pub rendered: Rendered,
}

/// The JWKS and each app's SP metadata, as served.
pub struct Rendered {
    pub jwks: axum::body::Bytes,
    /// By app name; an app whose metadata cannot be rendered answers 500 pages (logged).
    pub sp_metadata: std::collections::HashMap<String, Result<axum::body::Bytes, String>>,
}

impl Rendered {
    fn new(settings: &Settings) -> Self {
        let sp_metadata = settings
            .apps
            .iter()
            .map(|app| {
                let xml = crate::keys::certificate_b64(&app.sp_cert)
                    .map_err(|e| e.to_string())
                    .and_then(|cert| crate::saml::sp_metadata::render(app, &cert))
                    .map(axum::body::Bytes::from);
                (app.name.clone(), xml)
            })
            .collect();
        Rendered {
            jwks: axum::body::Bytes::from(settings.jwt_keys.jwks_json().to_string()),
            sp_metadata,
        }
    }
}

impl AppState {
    pub fn new(settings: Arc<Settings>, store: Arc<dyn LoginStateStore>, links: LinkStore) -> Self {
        let upstreams = settings
            .apps
            .iter()
            .filter(|a| a.upstream.is_some())
            .filter_map(|a| match proxy::client(a.connect_timeout, &a.upstream_ca) {
                Ok(c) => Some((a.name.clone(), c)),
                Err(e) => {
                    // The CA was parsed at config time, so this does not happen in practice;
                    // the app then answers 500 pages instead of proxying without TLS.
                    tracing::error!(app = a.name, "cannot build the upstream client: {e}");
                    None
                }
            })
            .collect();
        AppState {
            rendered: Rendered::new(&settings),
            settings,
            store,
            links,
            metrics: Metrics::default(),
            upstreams,
        }
    }
}

/// Counters for `/metrics` (the full set arrives with the operations issue).
#[derive(Default)]
pub struct Metrics {
    pub logins_ok: AtomicU64,
    pub logins_rejected: AtomicU64,
}

/// The bridge's routes; `extra` (the demo's IdP and sample app) is merged in when given.
pub fn router(state: Arc<AppState>, extra: Option<Router>) -> Router {
    let router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/.well-known/jwks.json", get(jwks))
        .fallback(saml_routes::dispatch)
        .with_state(state);
    let router = match extra {
        Some(extra) => router.merge(extra),
        None => router,
    };
    router.layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let problems: Vec<String> = [
        state.store.ping().await.err().map(|e| e.to_string()),
        state.links.ping().await.err().map(|e| e.to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if problems.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", problems.join("; ")),
        )
            .into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let m = &state.metrics;
    let body = format!(
        "# TYPE entree_bridge_logins_total counter\nentree_bridge_logins_total{{result=\"ok\"}} {}\nentree_bridge_logins_total{{result=\"rejected\"}} {}\n",
        m.logins_ok.load(Ordering::Relaxed),
        m.logins_rejected.load(Ordering::Relaxed)
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        state.rendered.jwks.clone(),
    )
        .into_response()
}

/// Serves until the shutdown future resolves (SIGINT/SIGTERM in `serve`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer address feeds X-Forwarded-For (and trust decisions) in headers mode.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
