//! The login use case, free of HTTP: [`start`] (the app's AuthnRequest made, signed and its
//! pending login stored), [`complete`] (the ACS: the IdP's answer validated, the person
//! resolved or first-time linking started), [`complete_link`] (the app's answer to linking)
//! and [`logout`] / [`single_logout`] (SP- and IdP-initiated logout).
//!
//! Why a module of its own: the order of the checks (pending login before validation, the
//! replay record before anything else is written, the resolution order of
//! [`identity::resolve`](crate::identity::resolve)) is the security of the bridge, and it can
//! now be read, and tested, without a server. `http/` keeps the wire: it parses forms and
//! queries, reads cookies, turns these results into responses and sets the cookies they name.
//! The data flows one way: http -> login -> {saml, identity, handoff, store}.
//!
//! Inputs are plain data (the posted `SAMLResponse` and `RelayState`, the browser's cookie
//! values as [`BrowserCookies`]); results are plain data ([`Outcome`], [`AfterLogout`]) with
//! the cookie changes that go with them ([`CookieChange`]), failures a [`LoginFailure`].
//! Which browser a pending login or link belongs to is decided by one rule, in [`binding`].

pub mod binding;
mod complete;
mod error;
mod link;
mod logout;
pub mod oidc;
mod start;
pub mod target;

#[cfg(test)]
#[cfg(feature = "demo")] // the dev IdP signs the documents these tests read
mod tests;

pub use binding::BrowserCookies;
pub use complete::school_check_detail;
pub use complete::{complete, AcsPost, LoggedIn, Outcome, MAX_RELAY_STATE_KEY_LEN};
pub use error::{contact_link, refused_text, temporary_problem_text, LoginFailure, PageText};
pub use link::{complete_link, LinkDone};
pub use logout::{logout, logout_to, single_logout, AfterLogout, IdpLogout, LoggedOut, LogoutNotice, SingleLogout};
pub use start::{start, start_for, Started, PENDING_LOGIN_LIFETIME};

use crate::cpu_pool::CpuPool;
use crate::handoff::jwt::SigningKeys;
use crate::identity::Pseudonyms;
use crate::saml::metadata_registry::MetadataInForce;
use crate::store::links::LinkStore;
use crate::store::reports::ReportCheck;
use crate::store::schools::ActivationCache;
use crate::store::LoginStateStore;

/// What the use case works with: the stores, the validation threads and the bridge's own
/// keys. Borrowed from the application state for one request; nothing here outlives it.
#[derive(Clone, Copy)]
pub struct Services<'a> {
    /// Pending logins and links, sessions, the replay cache.
    pub store: &'a dyn LoginStateStore,
    /// Account links (durable).
    pub links: &'a LinkStore,
    /// The threads that validate SAML Responses, off the async workers.
    pub validation: &'a CpuPool,
    /// `server.public_base_url`: the issuer of link requests, the audience of link responses.
    pub public_base_url: &'a str,
    /// Signs link requests.
    pub jwt_keys: &'a SigningKeys,
    /// Names people in log lines.
    pub pseudonyms: &'a Pseudonyms,
    /// The IdP metadata in force, by federation (the registry's live copies).
    pub metadata: &'a MetadataInForce,
    /// The schools activated as data (the config's `schools` are in the app's policy).
    pub activations: &'a ActivationCache,
}

/// A cookie the answer sets or clears in the browser, named by what it is for; the http
/// layer knows the names and attributes (`http::cookies`, `http::session`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieChange {
    /// The login cookie of a login just started: `nonce` is its pending login's.
    SetLogin { relay_state: String, nonce: String },
    /// The login cookie of this RelayState has served (or cannot serve any more).
    ClearLogin { relay_state: String },
    /// The link cookie of a first-time link just started.
    SetLink { jti: String, nonce: String },
    /// The link cookie of this link has served.
    ClearLink { jti: String },
    /// The app's session cookie (logout: the browser's sessions have ended).
    ClearSession,
}

/// A use case's answer and the cookie changes that go with it, which apply whether it
/// succeeded or not (a used login cookie is cleared when the login then fails, too).
#[derive(Debug)]
pub struct Answer<T> {
    pub result: Result<T, LoginFailure>,
    pub cookies: Vec<CookieChange>,
    /// What the support desk's failure report of a failed answer holds beyond its code.
    pub diagnosis: Diagnosis,
}

impl<T> Answer<T> {
    fn new(result: Result<T, LoginFailure>, cookies: Vec<CookieChange>) -> Self {
        Answer {
            result,
            cookies,
            diagnosis: Diagnosis::default(),
        }
    }
}

/// How far a failed login got, for its failure report (`entree-bridge explain`): the
/// checks it passed and the one that failed (`verify-response --json`'s `checks`, then the
/// identity step's), the school the assertion named, and the person as the logs name them
/// (a keyed pseudonym, never the federated id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnosis {
    pub checks: Vec<ReportCheck>,
    pub school: Option<String>,
    pub person: Option<String>,
    /// The federated id while the login runs, made a pseudonym only when it fails (no
    /// HMAC for the logins that succeed); never leaves `login`.
    federated_id: Option<String>,
}

impl Diagnosis {
    fn check(&mut self, check: &str, ok: bool, detail: impl Into<String>) {
        self.checks.push(ReportCheck {
            check: check.to_string(),
            ok,
            detail: detail.into(),
        });
    }
}
