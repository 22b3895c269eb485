//! The handlers of the global routes ([`super::routes::GlobalRoute`]): liveness, readiness
//! (the stores answer, every federation has usable IdP metadata), the metrics page and the
//! JWKS the apps verify hand-off tokens with.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Shared;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
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
            .filter_map(|f| state.metadata.idp(&f.name).err().map(|e| e.to_string())),
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

pub async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let state = shared.current();
    // `admin.metrics`: served on the admin listener only.
    if state.settings.admin.as_ref().is_some_and(|a| a.metrics) {
        return super::errors::LoginError::UnknownApp.into_response();
    }
    metrics_response(&state)
}

/// The Prometheus text of `state`, on whichever listener serves it.
pub fn metrics_response(state: &super::AppState) -> Response {
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

pub async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
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
