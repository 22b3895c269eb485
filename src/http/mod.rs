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
pub mod session;
pub mod target;

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

/// Largest request body the bridge reads (an ACS POST is a few tens of KiB).
pub const MAX_BODY_BYTES: usize = 512 * 1024;

/// What the router serves: the state of the config in force. A reload replaces it whole;
/// each request takes one snapshot when it starts and finishes under it.
pub struct Shared {
    current: arc_swap::ArcSwap<AppState>,
    /// The certificate the https listener presents, when there is one (swapped on reload).
    tls: std::sync::OnceLock<axum_server::tls_rustls::RustlsConfig>,
}

impl Shared {
    pub fn new(state: AppState) -> Arc<Self> {
        Arc::new(Shared {
            current: arc_swap::ArcSwap::from_pointee(state),
            tls: std::sync::OnceLock::new(),
        })
    }

    /// The state a request runs under, from its start to its end.
    pub fn current(&self) -> Arc<AppState> {
        self.current.load_full()
    }

    /// Remembers the https listener's certificate holder, for reloads.
    pub fn set_tls(&self, tls: axum_server::tls_rustls::RustlsConfig) {
        let _ = self.tls.set(tls);
    }

    pub fn tls(&self) -> Option<&axum_server::tls_rustls::RustlsConfig> {
        self.tls.get()
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

/// How long a client may take to send a request's headers (a connection that dribbles them,
/// slowloris-style, is closed), and how long an idle keep-alive connection is kept.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The most a request's start line and headers may take (hyper answers 431 beyond it).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Connections served at once; beyond it new ones are closed at accept.
pub const MAX_CONNECTIONS: usize = 10_000;
/// How long a shutdown waits for requests in flight (a client that never reads its answer
/// must not keep the process from stopping).
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The HTTP/1 settings of every connection, plain or TLS.
fn http1_settings(builder: &mut hyper::server::conn::http1::Builder) {
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(MAX_HEADER_BYTES);
}

/// Serves until the shutdown future resolves (SIGINT/SIGTERM in `serve`), then lets the
/// requests in flight finish. Each connection gets the bounds above; the peer address is
/// given to the handlers as `ConnectInfo` (it feeds X-Forwarded-For and trust decisions).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    // Every connection task holds a receiver; shutdown waits until all are gone.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    http1_settings(&mut builder);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors or memory: wait instead of spinning. A connection
                    // that was reset before it was taken is that connection's problem only.
                    if matches!(e.raw_os_error(), Some(libc_errno::EMFILE | libc_errno::ENFILE | libc_errno::ENOBUFS | libc_errno::ENOMEM)) {
                        tracing::warn!("accepting a connection failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(peer = %peer.ip(), "{MAX_CONNECTIONS} connections open: refusing one more");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let service = connection_service(router.clone(), peer);
        let connection = builder
            .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
            .with_upgrades();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    if tokio::time::timeout(DRAIN_TIMEOUT, stop_tx.closed()).await.is_err() {
        tracing::warn!(
            "{} connection(s) still busy {}s after shutdown began: closing them",
            stop_tx.receiver_count(),
            DRAIN_TIMEOUT.as_secs()
        );
    }
    Ok(())
}

/// The accept errors that mean the process is out of a resource (Linux numbers).
mod libc_errno {
    pub const ENOMEM: i32 = 12;
    pub const ENFILE: i32 = 23;
    pub const EMFILE: i32 = 24;
    pub const ENOBUFS: i32 = 105;
}

/// The router as one connection's hyper service, with the peer address in every request.
fn connection_service(
    router: Router,
    peer: std::net::SocketAddr,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        let mut router = router.clone();
        async move { tower_service::Service::call(&mut router, req).await }
    })
}

/// Serves https with `tls` until the shutdown future resolves; requests in flight finish.
/// Keep `tls` (in [`Shared::set_tls`]) to swap the certificate on reload.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: axum_server::tls_rustls::RustlsConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(None);
    });
    // The first request must come within the header timeout too: protocol detection reads
    // bytes before hyper's own header timer starts.
    let mut server = axum_server::from_tcp_rustls(listener.into_std()?, tls)?
        .handle(handle)
        .first_request_timeout(HEADER_READ_TIMEOUT);
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        // hyper-util's builder has no exact header-size bound; the buffer bound is close
        // (a read may overshoot it once).
        .max_buf_size(MAX_HEADER_BYTES);
    server
        .serve(router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .await
}
