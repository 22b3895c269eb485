//! The application state every request runs under: the config in force and what outlives
//! reloads (stores, counters, the validation threads), swapped whole by a reload so that each
//! request finishes under the snapshot it started with.

use std::sync::Arc;

use super::server::TlsCertificate;
use super::{metrics, proxy, rate_limit, Metrics};
use crate::config::Settings;
use crate::saml::metadata_registry::{MetadataInForce, MetadataRegistry};
use crate::store::links::LinkStore;
use crate::store::schools::ActivationCache;
use crate::store::LoginStateStore;

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
    /// The IdP metadata in force for this config's federations (its slots outlive reloads
    /// that keep a federation's source).
    pub metadata: MetadataInForce,
    /// Every federation's metadata slot, kept across reloads.
    pub metadata_registry: Arc<MetadataRegistry>,
    /// oidc mode: the client that POSTs Back-Channel Logout tokens (when an app takes them).
    pub backchannel: Option<proxy::UpstreamClient>,
    /// The schools activated as data, refreshed from the link store (kept across reloads).
    pub activations: Arc<ActivationCache>,
}

/// Responses waiting for a validation thread beyond the one running on each; more than this
/// and the ACS answers 503 `busy` at once. A real login's validation takes well under a
/// millisecond, so a full queue drains in milliseconds; a hostile one's is bounded to tens.
pub const VALIDATION_QUEUE: usize = 64;

/// The JWKS, the OpenID Connect discovery document and each app's SP metadata, as served.
pub struct Rendered {
    pub jwks: axum::body::Bytes,
    pub discovery: axum::body::Bytes,
    /// By app name; an app whose metadata cannot be rendered answers 500 pages (logged).
    pub sp_metadata: std::collections::HashMap<String, Result<axum::body::Bytes, String>>,
}

impl Rendered {
    fn new(settings: &Settings) -> Self {
        let sp_metadata = settings
            .apps
            .iter()
            .map(|app| {
                let xml = app
                    .sp
                    .certificates()
                    .map(|cert| crate::keys::certificate_b64(cert).map_err(|e| e.to_string()))
                    .collect::<Result<Vec<String>, String>>()
                    .and_then(|certs| crate::saml::sp_metadata::render(&app.sp, &certs))
                    .map(axum::body::Bytes::from);
                (app.name.clone(), xml)
            })
            .collect();
        Rendered {
            jwks: axum::body::Bytes::from(settings.jwt_keys.jwks_json().to_string()),
            discovery: axum::body::Bytes::from(super::oidc::discovery_document(settings)),
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
            Arc::new(MetadataRegistry::default()),
            Arc::new(ActivationCache::default()),
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
            self.metadata_registry.clone(),
            self.activations.clone(),
        )
    }

    fn with_metrics(
        settings: Arc<Settings>,
        store: Arc<dyn LoginStateStore>,
        links: LinkStore,
        metrics: Arc<Metrics>,
        validation: Arc<crate::cpu_pool::CpuPool>,
        metadata_registry: Arc<MetadataRegistry>,
        activations: Arc<ActivationCache>,
    ) -> Self {
        let upstreams = settings
            .apps
            .iter()
            .filter_map(|a| a.handoff.upstream.as_ref().map(|upstream| (a, upstream)))
            .filter_map(
                |(a, upstream)| match proxy::client(upstream.connect_timeout, &upstream.ca) {
                    Ok(c) => Some((a.name.clone(), c)),
                    Err(e) => {
                        // The CA was parsed at config time, so this does not happen in practice;
                        // the app then answers 500 pages instead of proxying without TLS.
                        tracing::error!(app = a.name, "cannot build the upstream client: {e}");
                        None
                    }
                },
            )
            .collect();
        let proxy_stats = settings
            .apps
            .iter()
            .filter(|a| a.handoff.upstream.is_some())
            .map(|a| (a.name.clone(), metrics.proxy_stats(&a.name)))
            .collect();
        let backchannel = settings
            .apps
            .iter()
            .any(|a| {
                a.handoff
                    .oidc
                    .as_ref()
                    .is_some_and(|c| c.backchannel_logout_uri.is_some())
            })
            .then(|| proxy::client(super::oidc_logout::BACKCHANNEL_TIMEOUT, &[]))
            .and_then(|built| {
                built
                    .map_err(|e| tracing::error!("cannot build the back-channel logout client: {e}"))
                    .ok()
            });
        let metadata = metadata_registry.put_in_force(settings.federations.values().map(|f| f.loaded_metadata()));
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
            metadata,
            metadata_registry,
            backchannel,
            activations,
        }
    }
}

/// Starts what keeps a serving bridge's data current, for as long as the process runs: the
/// school activations read again every few seconds (the first read at once), and the
/// failure reports past `support.retention` purged (the retention of the config in force).
pub fn start_upkeep(shared: &Arc<Shared>) {
    let state = shared.current();
    tokio::spawn(state.metrics.repeats.clone().keep_saying());
    tokio::spawn(crate::store::schools::keep_fresh(
        state.activations.clone(),
        state.links.clone(),
    ));
    let retention_of = {
        let shared = shared.clone();
        move || shared.current().settings.support.retention
    };
    tokio::spawn(crate::store::reports::purge_on_schedule(
        state.links.clone(),
        state.metrics.reports.clone(),
        retention_of,
    ));
}
