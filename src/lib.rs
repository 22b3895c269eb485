//! entree-bridge: a SAML 2.0 service-provider proxy between Kennisnet Entree and learning apps.
//!
//! One login, as data: elo link -> `http` routes it -> `login::start` (AuthnRequest signed,
//! pending request stored) -> Entree -> ACS -> `login::complete` (`saml::response` validates
//! -> `identity` resolves the person code or starts linking) -> `handoff` (JWT form or headers
//! session) -> app. Dependencies point one way: `http` -> `login` -> {`saml`, `identity`,
//! `handoff`, `store`}; `config` builds each one's settings; `tests/it/house.rs` checks it.
//! README "How the code is laid out" walks one login through the modules.

pub mod admin;
pub mod config;
pub mod cpu_pool;
/// The development IdP, the sample apps and the test helpers: only with the `demo` feature
/// (default), never in the production build (`--no-default-features`).
#[cfg(feature = "demo")]
pub mod demo;
pub mod handoff;
pub mod http;
pub mod identity;
pub mod jws;
pub mod keys;
pub mod login;
pub mod metadata_refresh;
pub mod reload;
pub mod saml;
pub mod store;
pub mod verify_cli;
pub mod verify_identity;

/// mimalloc for every binary built on this crate (the bridge, its examples and tests): the
/// proxy path allocates many small, short-lived buffers per request (BENCHMARKS.md).
/// Not under the fuzzer (`--cfg fuzzing`), whose sanitizer watches the system allocator.
#[cfg(not(fuzzing))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
