//! Server-side login state behind one trait: pending AuthnRequests, pending links, app
//! sessions and the assertion replay cache. `memory` serves one instance; `redis` is shared by
//! several. Account links (durable) are a separate store: [`links`], whose database also
//! holds school activations ([`schools`]) and failure reports ([`reports`]).

pub mod link_affiliations;
pub mod links;
pub mod memory;
pub mod redis;
pub mod reports;
pub mod schools;
mod session_bytes;
mod settings;

use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use crate::handoff::oidc::authorize::Authorization;

pub use settings::{redacted, LinksTarget, RedisNodes, RedisSettings, SessionBackend, DEFAULT_PENDING_BUDGET};

/// A login this bridge started and is waiting for the IdP to answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingLogin {
    pub request_id: String,
    pub app: String,
    pub target: Option<String>,
    /// The random value in this browser's login cookie; binds the answer to the browser.
    pub browser_nonce: String,
    pub expires_at: SystemTime,
    /// oidc mode: the authorization request this login answers (a code is issued at its end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<Authorization>,
    /// The AuthnRequest asked for ForceAuthn (`prompt=login`, `max_age`): the IdP's login must
    /// be newer than the request.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_authn: bool,
}

/// A first-time link the bridge started and is waiting for the app to answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingLink {
    pub app: String,
    pub facts: crate::identity::Facts,
    pub target: Option<String>,
    /// Kept for the session the link ends in.
    pub subject: Subject,
    /// The random value in this browser's link cookie.
    pub browser_nonce: String,
    pub expires_at: SystemTime,
    /// oidc mode: the authorization request the login that started this link answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<Authorization>,
    /// When the IdP authenticated the person (kept for the session the link ends in).
    #[serde(default = "unix_epoch")]
    pub authenticated_at: SystemTime,
}

/// Who the IdP says logged in: kept with sessions for Single Logout.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subject {
    pub name_id: String,
    pub name_id_format: Option<String>,
    pub session_index: Option<String>,
}

/// A logged-in browser of one app (headers mode): the bridge's own session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppSession {
    pub app: String,
    pub identity: crate::identity::Identity,
    pub subject: Subject,
    /// Absolute end of the session (`sessions.lifetime` after login).
    pub expires_at: SystemTime,
    /// When the student logged in at the IdP (the id_token's `auth_time`, `max_age`).
    #[serde(default = "unix_epoch")]
    pub authenticated_at: SystemTime,
}

fn unix_epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH
}

/// oidc mode: what an authorization code stands for until it is redeemed (once, within
/// 60 s, on any instance), bound to the client, redirect URI, PKCE challenge and nonce.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CodeGrant {
    pub app: String,
    pub authorization: Authorization,
    pub identity: crate::identity::Identity,
    /// The OP session's `sid`.
    pub sid: String,
    /// Unix seconds of the IdP login.
    pub auth_time: i64,
    pub expires_at: SystemTime,
}

/// oidc mode: what an access token opens at the userinfo endpoint until it expires.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccessGrant {
    pub app: String,
    pub client_id: String,
    pub identity: crate::identity::Identity,
    pub expires_at: SystemTime,
}

/// A session that ended by Single Logout: what a Back-Channel Logout token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedSession {
    pub id: String,
    pub person_code: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the state store is unavailable: {0}")]
    Unavailable(String),
    /// The budget for pending logins (which anyone can start) is spent: a flood, most likely.
    #[error("{0}")]
    Full(String),
}

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

pub trait LoginStateStore: Send + Sync {
    /// Stores a pending login under its RelayState key until `expires_at`.
    fn put_pending(&self, relay_state: &str, login: PendingLogin) -> StoreFuture<'_, ()>;

    /// Removes and returns the pending login: each can be answered once.
    fn take_pending(&self, relay_state: &str) -> StoreFuture<'_, Option<PendingLogin>>;

    /// Stores a pending first-time link under its `jti`.
    fn put_pending_link(&self, jti: &str, link: PendingLink) -> StoreFuture<'_, ()>;

    /// Removes and returns the pending link: each `link_response` can be used once.
    fn take_pending_link(&self, jti: &str) -> StoreFuture<'_, Option<PendingLink>>;

    /// Stores a new app session; it lives until `session.expires_at`, or until it has been
    /// idle for `idle` (each successful `get_session` counts as use).
    fn put_session(&self, id: &str, session: AppSession, idle: std::time::Duration) -> StoreFuture<'_, ()>;

    /// The session, if it exists and has neither expired nor been idle too long.
    fn get_session(&self, id: &str) -> StoreFuture<'_, Option<AppSession>>;

    /// Whether the session exists, is alive and belongs to `app`, counting as use (as
    /// [`get_session`](Self::get_session) does). For the proxy path, where the identity is
    /// already at hand: a store that can answer without rebuilding the session does so.
    fn session_is_of(&self, id: &str, app: &str) -> StoreFuture<'_, bool> {
        let app = app.to_string();
        let found = self.get_session(id);
        Box::pin(async move { Ok(found.await?.is_some_and(|s| s.app == app)) })
    }

    /// Ends a session (logout, or rotation at login).
    fn remove_session(&self, id: &str) -> StoreFuture<'_, ()>;

    /// Ends every session of `app` for this IdP NameID (IdP-initiated Single Logout);
    /// returns how many ended.
    fn remove_sessions_of(&self, app: &str, name_id: &str) -> StoreFuture<'_, usize> {
        let ended = self.end_sessions_of(app, name_id);
        Box::pin(async move { Ok(ended.await?.len()) })
    }

    /// Ends every session of `app` for this IdP NameID and returns the ones that ended, for
    /// the Back-Channel Logout tokens of oidc mode.
    fn end_sessions_of(&self, app: &str, name_id: &str) -> StoreFuture<'_, Vec<EndedSession>>;

    /// Stores an authorization code's grant under `key` (the code's hash) until it expires.
    fn put_code(&self, key: &str, grant: CodeGrant) -> StoreFuture<'_, ()>;

    /// Removes and returns the grant: each code is redeemed once. Atomic across instances:
    /// of two concurrent calls with the same key exactly one gets it.
    fn take_code(&self, key: &str) -> StoreFuture<'_, Option<CodeGrant>>;

    /// Stores an access token's grant under `key` (the token's hash) until it expires.
    fn put_access_token(&self, key: &str, grant: AccessGrant) -> StoreFuture<'_, ()>;

    /// The access token's grant, while it lives.
    fn get_access_token(&self, key: &str) -> StoreFuture<'_, Option<AccessGrant>>;

    /// Records an assertion ID until `until`; `false` when it was already recorded (a replay).
    /// Atomic: of two concurrent calls with the same ID exactly one gets `true`.
    fn remember_assertion(&self, key: &str, until: SystemTime) -> StoreFuture<'_, bool>;

    /// Whether the store can be reached (for `/readyz`).
    fn ping(&self) -> StoreFuture<'_, ()>;
}

/// The store `sessions.store` names. Redis is connected lazily (and kept connected from within
/// the runtime): an unreachable Redis is not an error here, only a bad URL or CA is.
pub fn open(backend: &SessionBackend) -> Result<std::sync::Arc<dyn LoginStateStore>, StoreError> {
    match backend {
        SessionBackend::Memory => Ok(std::sync::Arc::new(memory::MemoryStore::default())),
        SessionBackend::Redis(settings) => {
            let store = redis::RedisStore::new(settings)?;
            store.start_keepalive();
            Ok(std::sync::Arc::new(store))
        }
    }
}
