//! Who is calling the admin listener: a bearer token (the API) or a signed-in page session
//! (a cookie, with a CSRF token for every change). Failed attempts are limited per client
//! address before any token is compared, so guessing costs minutes, not milliseconds.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};

use super::ops::{Actor, ImportOptions};
use super::tokens::{TokenFile, TokenFileError};
use crate::config::Settings;
use crate::http::{cookies, rate_limit};
use crate::keys::AdminTokens;

/// The page session's cookie (Path=/admin, HttpOnly, SameSite=Strict).
pub const SESSION_COOKIE: &str = "eb_admin";
/// A page session ends after this long without a request...
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// ...and after this long in any case.
pub const SESSION_MAX: Duration = Duration::from_secs(8 * 3600);
/// Failed sign-ins or bearer tokens per client address in [`FAILURE_WINDOW`]; beyond it the
/// address is answered 429 until the window ends, whatever it sends.
pub const MAX_FAILURES: u32 = 10;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Page sessions kept at once (the oldest are forgotten beyond it).
const MAX_SESSIONS: u64 = 10_000;

/// Why a request is not let in.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("no admin token (Authorization: Bearer ...)")]
    Missing,
    #[error("the admin token is not (or no longer) in admin.token_file")]
    Wrong,
    #[error("too many failed attempts from this address: try again in {0} s")]
    TooMany(u64),
    #[error(transparent)]
    TokenFile(#[from] TokenFileError),
    #[error("the admin listener is off in the config in force ([admin] was removed; restart to close the port)")]
    Off,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Missing | Refusal::Wrong => "unauthorized",
            Refusal::TooMany(_) => "rate_limited",
            Refusal::TokenFile(_) | Refusal::Off => "admin_unavailable",
        }
    }
}

/// A Magister file uploaded for a dry run, kept in the session until it is applied (the
/// admin applies exactly what the report was about, not a second upload).
pub struct PendingImport {
    pub id: String,
    pub app: String,
    pub file_name: String,
    pub options: ImportOptions,
    pub bytes: Vec<u8>,
}

/// A signed-in page session. It holds the token's digest, not the token, and is valid only
/// while that token is still in the file.
pub struct Session {
    pub token_name: String,
    token_digest: [u8; 32],
    pub csrf: String,
    started: Instant,
    pub pending_import: Mutex<Option<PendingImport>>,
}

impl Session {
    pub fn actor(&self) -> Actor {
        Actor::token(&self.token_name)
    }

    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        presented.len() == self.csrf.len() && openssl::memcmp::eq(presented.as_bytes(), self.csrf.as_bytes())
    }
}

/// Failed attempts per address in the current window.
struct Failures {
    count: u32,
    since: Instant,
}

pub struct Gate {
    tokens: TokenFile,
    sessions: moka::sync::Cache<String, Arc<Session>>,
    failures: moka::sync::Cache<IpAddr, Arc<Mutex<Failures>>>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            tokens: TokenFile::default(),
            sessions: moka::sync::Cache::builder()
                .max_capacity(MAX_SESSIONS)
                .time_to_idle(SESSION_IDLE)
                .time_to_live(SESSION_MAX)
                .build(),
            failures: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(FAILURE_WINDOW)
                .build(),
        }
    }
}

/// The address failures are counted against (behind a trusted proxy, the client's).
pub fn client_of(settings: &Settings, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    rate_limit::counted_as(rate_limit::client_address(peer.ip(), headers, &settings.trusted_proxies).ip)
}

impl Gate {
    fn tokens(&self, settings: &Settings) -> Result<Arc<AdminTokens>, Refusal> {
        let admin = settings.admin.as_ref().ok_or(Refusal::Off)?;
        Ok(self.tokens.current(&admin.token_file)?)
    }

    /// `Err(seconds)` while `client` has used up its failed attempts.
    fn blocked(&self, client: IpAddr) -> Option<u64> {
        let entry = self.failures.get(&client)?;
        let f = entry.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = f.since.elapsed();
        (f.count >= MAX_FAILURES && elapsed < FAILURE_WINDOW).then(|| (FAILURE_WINDOW - elapsed).as_secs().max(1))
    }

    fn failed(&self, client: IpAddr) {
        let entry = self.failures.get_with(client, || {
            Arc::new(Mutex::new(Failures {
                count: 0,
                since: Instant::now(),
            }))
        });
        let mut f = entry.lock().unwrap_or_else(|p| p.into_inner());
        if f.since.elapsed() >= FAILURE_WINDOW {
            *f = Failures {
                count: 0,
                since: Instant::now(),
            };
        }
        f.count += 1;
    }

    /// The name of the token `presented` is, counting a failure against `client` when it is
    /// none. A blocked address is refused before anything is compared.
    fn check_token(&self, settings: &Settings, client: IpAddr, presented: Option<&str>) -> Result<String, Refusal> {
        if let Some(wait) = self.blocked(client) {
            return Err(Refusal::TooMany(wait));
        }
        let tokens = self.tokens(settings)?;
        let Some(presented) = presented.map(str::trim).filter(|t| !t.is_empty()) else {
            self.failed(client);
            return Err(Refusal::Missing);
        };
        match tokens.name_of(presented) {
            Some(name) => Ok(name.to_string()),
            None => {
                self.failed(client);
                tracing::warn!(client = %client, "admin: a wrong token was presented");
                Err(Refusal::Wrong)
            }
        }
    }

    /// The API's caller, from `Authorization: Bearer <token>`.
    pub fn bearer(&self, settings: &Settings, client: IpAddr, headers: &HeaderMap) -> Result<Actor, Refusal> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(token)
            });
        self.check_token(settings, client, presented)
            .map(|name| Actor::token(&name))
    }

    /// Signs in with a token typed on the sign-in page: a new session (a new id, whatever
    /// cookie the browser had) and its cookie.
    pub fn sign_in(&self, settings: &Settings, client: IpAddr, token: &str) -> Result<(Arc<Session>, String), Refusal> {
        let name = self.check_token(settings, client, Some(token))?;
        let id = crate::keys::random_token();
        let session = Arc::new(Session {
            token_name: name,
            token_digest: AdminTokens::digest(token.trim()),
            csrf: crate::keys::random_token(),
            started: Instant::now(),
            pending_import: Mutex::new(None),
        });
        self.sessions.insert(id.clone(), session.clone());
        let cookie = format!(
            "{SESSION_COOKIE}={id}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}",
            SESSION_MAX.as_secs()
        );
        Ok((session, cookie))
    }

    /// The page session the request's cookie names, while it lasts and its token is still in
    /// the file.
    pub fn session(&self, settings: &Settings, headers: &HeaderMap) -> Option<Arc<Session>> {
        let id = cookies::get(headers, SESSION_COOKIE)?;
        let session = self.sessions.get(id)?;
        let tokens = self.tokens(settings).ok()?;
        let still_valid = session.started.elapsed() < SESSION_MAX
            && tokens.name_of_digest(&session.token_digest) == Some(session.token_name.as_str());
        if !still_valid {
            self.sessions.invalidate(id);
            return None;
        }
        Some(session)
    }

    /// Ends the request's page session; the cookie that clears it.
    pub fn sign_out(&self, headers: &HeaderMap) -> String {
        if let Some(id) = cookies::get(headers, SESSION_COOKIE) {
            self.sessions.invalidate(id);
        }
        format!("{SESSION_COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0")
    }
}

/// A change must come from the admin's own pages: a browser that says the request is
/// cross-site (Fetch Metadata) is refused whatever else it carries.
pub fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| !matches!(site, "same-origin" | "none"))
}
