//! The integration tests, one binary: a real bridge on an ephemeral port (or the built
//! `entree-bridge` binary), real Redis and PostgreSQL, the development IdP. One module per
//! area; the harness is `common`. One binary links the library and its dependencies once,
//! where a binary per file linked them seventeen times (issue 16).
//!
//! Run one area with a filter: `cargo test --test it -- login_flow::`.

mod common;

mod admin_desk;
mod cli;
mod config_reference;
mod demo;
mod first_app;
mod headers_proxy;
mod hostile_responses;
mod house;
mod identity_links;
mod interop_oidc;
mod interop_pysaml2;
mod interop_simplesamlphp;
mod keys;
mod links_cli;
mod listener_bounds;
mod login_flow;
mod logout;
mod metadata_refresh;
mod metadata_reload;
mod oidc_flow;
mod oidc_logout;
mod operations;
mod redis_topologies;
mod scale_out;
mod session_stores;
mod support_desk;
mod web_hardening;
