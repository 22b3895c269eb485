//! The HTTP face of the bridge: one server for plain http and https (`server`), the state a
//! request runs under (`state`), the routes as types (`routes`) and the router (`router`), the
//! handlers, the pages (nl/en), and the error layer that alone renders, logs and counts
//! failures (`errors`).

mod acs;
pub mod cookies;
pub mod errors;
mod global;
mod link_complete;
mod logout;
pub mod metrics;
mod oidc;
mod oidc_logout;
pub mod pages;
pub mod proxy;
pub mod rate_limit;
mod repeats;
pub(crate) mod request_id;
pub mod resolve;
mod router;
pub mod routes;
mod saml_routes;
mod server;
pub mod session;
mod startup;
mod state;
mod use_case;

pub use global::metrics_response;
pub use metrics::Metrics;
pub use router::{router, FromUpstream};
pub use server::{
    serve, serve_on, Listener, RequestBodyError, TlsCertificate, BODY_MIN_BYTES_PER_SECOND, BODY_READ_GRACE,
    DEFAULT_MAX_CONNECTIONS_PER_CLIENT, DRAIN_TIMEOUT, HEADER_READ_TIMEOUT, MAX_CONNECTIONS, MAX_HEADER_BYTES,
    TLS_HANDSHAKE_TIMEOUT, WRITE_IDLE_TIMEOUT,
};
pub use startup::log_startup;
pub use state::{start_upkeep, AppState, Rendered, Shared, VALIDATION_QUEUE};

/// Largest request body the bridge reads (an ACS POST is a few tens of KiB).
pub const MAX_BODY_BYTES: usize = 512 * 1024;
