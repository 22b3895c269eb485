//! The HTTP face of the bridge: router, per-app SAML routes, global routes, error pages.

mod acs;
pub mod cookies;
pub mod errors;
mod link_complete;
mod logout;
pub mod metrics;
pub mod pages;
pub mod proxy;
pub mod rate_limit;
pub mod resolve;
mod saml_routes;
mod server;
pub mod session;
mod use_case;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::config::Settings;
use crate::store::links::LinkStore;
use crate::store::LoginStateStore;
pub use metrics::Metrics;
pub use server::{
    serve, RequestBodyError, TlsCertificate, BODY_MIN_BYTES_PER_SECOND, BODY_READ_GRACE,
    DEFAULT_MAX_CONNECTIONS_PER_CLIENT, DRAIN_TIMEOUT, HEADER_READ_TIMEOUT, MAX_CONNECTIONS, MAX_HEADER_BYTES,
    TLS_HANDSHAKE_TIMEOUT, WRITE_IDLE_TIMEOUT,
};

/// Largest request body the bridge reads (an ACS POST is a few tens of KiB).
pub const MAX_BODY_BYTES: usize = 512 * 1024;

/// What the router serves: the state of the config in force. A reload replaces it whole;
/// each request takes one snapshot when it starts and finishes under it.
pub struct Shared {
    current: arc_swap::ArcSwap<AppState>,
    /// The certificate the https listener presents, when the config at start had one
    /// (swapped on reload; switching between http and https takes a restart).
    tls: Option<TlsCertificate>,
}

impl Shared {
    pub fn new(state: AppState) -> Arc<Self> {
        Arc::new(Shared {
            tls: state.settings.tls.clone().map(TlsCertificate::new),
            current: arc_swap::ArcSwap::from_pointee(state),
        })
    }

    /// The state a request runs under, from its start to its end.
    pub fn current(&self) -> Arc<AppState> {
        self.current.load_full()
    }

    /// The https listener's certificate holder; `None`: the server speaks plain http.
    pub fn tls(&self) -> Option<&TlsCertificate> {
        self.tls.as_ref()
    }

    /// Puts a new config in force for every request that starts from now on.
    pub fn replace(&self, state: AppState) {
        self.current.store(Arc::new(state));
    }
}

/// Everything a request handler needs.
pub struct AppState {
    pub settings: Arc<Settings>,
    /// The stores and counters outlive config reloads: the new state gets the same ones.
    pub store: Arc<dyn LoginStateStore>,
    pub links: LinkStore,
    pub metrics: Arc<Metrics>,
    /// Pooled upstream clients of the apps in headers mode, by app name.
    pub upstreams: std::collections::HashMap<String, proxy::UpstreamClient>,
    /// Documents that change only with the config, rendered once when it is loaded.
    pub rendered: Rendered,
    /// The proxy counters of the headers-mode apps, by app name (lock-free per request).
    pub proxy_stats: std::collections::HashMap<String, Arc<metrics::ProxyStats>>,
    /// headers mode: each session's identity headers and reusable `X-Bridge-Token` (made
    /// anew with the config).
    pub identity_headers: crate::handoff::identity_headers::IdentityHeaders,
    /// Requests per client address on login, ACS, link completion and logout.
    pub rate_limiter: rate_limit::RateLimiter,
    /// The threads that validate SAML Responses, off the async workers (kept across reloads).
    pub validation: Arc<crate::cpu_pool::CpuPool>,
}

/// Responses waiting for a validation thread beyond the one running on each; more than this
/// and the ACS answers 503 `busy` at once. A real login's validation takes well under a
/// millisecond, so a full queue drains in milliseconds; a hostile one's is bounded to tens.
pub const VALIDATION_QUEUE: usize = 64;

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
                let xml = std::iter::once(&app.sp_cert)
                    .chain(app.sp_next.as_ref().map(|(_, cert)| cert))
                    .map(|cert| crate::keys::certificate_b64(cert).map_err(|e| e.to_string()))
                    .collect::<Result<Vec<String>, String>>()
                    .and_then(|certs| crate::saml::sp_metadata::render(app, &certs))
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
        // Start-up only: a process that cannot start two threads cannot serve either.
        let validation =
            crate::cpu_pool::CpuPool::per_core("validate", VALIDATION_QUEUE).expect("starting the validation threads");
        Self::with_metrics(
            settings,
            store,
            links,
            Arc::new(Metrics::default()),
            Arc::new(validation),
        )
    }

    /// The state for a reloaded config: same stores, counters and threads, everything else new.
    pub fn reconfigured(&self, settings: Arc<Settings>) -> Self {
        Self::with_metrics(
            settings,
            self.store.clone(),
            self.links.clone(),
            self.metrics.clone(),
            self.validation.clone(),
        )
    }

    fn with_metrics(
        settings: Arc<Settings>,
        store: Arc<dyn LoginStateStore>,
        links: LinkStore,
        metrics: Arc<Metrics>,
        validation: Arc<crate::cpu_pool::CpuPool>,
    ) -> Self {
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
        let proxy_stats = settings
            .apps
            .iter()
            .filter(|a| a.upstream.is_some())
            .map(|a| (a.name.clone(), metrics.proxy_stats(&a.name)))
            .collect();
        AppState {
            rendered: Rendered::new(&settings),
            proxy_stats,
            identity_headers: Default::default(),
            rate_limiter: rate_limit::RateLimiter::new(settings.rate_limit),
            settings,
            store,
            links,
            metrics,
            upstreams,
            validation,
        }
    }
}

/// The bridge's routes; `extra` (the demo's IdP and sample app) is merged in when given.
pub fn router(state: Arc<Shared>, extra: Option<Router>) -> Router {
    let router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/.well-known/jwks.json", get(jwks))
        .fallback(saml_routes::dispatch)
        .with_state(state.clone());
    let router = match extra {
        Some(extra) => router.merge(extra),
        None => router,
    };
    router
        .layer(axum::middleware::map_response_with_state(state, baseline_headers))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// Marks a response that came from an app's upstream (headers mode): its headers are the
/// app's own, and the bridge adds none of its page headers to it.
#[derive(Debug, Clone, Copy)]
pub struct FromUpstream;

/// What every answer of the bridge itself carries, whatever route made it (pages set their
/// own CSP; redirects, JSON, metadata and health checks get these too): no sniffing, no
/// framing, no referrer (login redirects and hand-off pages carry tokens in URLs and forms),
/// and HSTS when the bridge is served over https.
async fn baseline_headers(State(shared): State<Arc<Shared>>, mut response: Response) -> Response {
    if response.extensions().get::<FromUpstream>().is_some() {
        return response;
    }
    let https = shared.tls().is_some() || shared.current().settings.public_base_url.scheme() == "https";
    let headers = response.headers_mut();
    let defaults = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, header::HeaderValue::from_static(value));
        }
    }
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            header::HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let state = shared.current();
    let mut problems: Vec<String> = [
        state.store.ping().await.err().map(|e| e.to_string()),
        state.links.ping().await.err().map(|e| e.to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    problems.extend(
        state
            .settings
            .federations
            .values()
            .filter_map(|f| f.idp().err().map(|e| e.to_string())),
    );
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

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let state = shared.current();
    let mut text = state.metrics.render();
    // The validation pool's load: near capacity, the ACS starts answering 503 `busy`.
    let pool = &state.validation;
    text.push_str(&format!(
        "# HELP entree_bridge_validation_in_flight SAML Responses being validated or waiting for a validation thread.\n\
         # TYPE entree_bridge_validation_in_flight gauge\n\
         entree_bridge_validation_in_flight {}\n\
         # HELP entree_bridge_validation_capacity Responses the validation pool holds at most (threads + queue).\n\
         # TYPE entree_bridge_validation_capacity gauge\n\
         entree_bridge_validation_capacity {}\n",
        pool.in_flight(),
        pool.capacity()
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    let state = shared.current();
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
