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
/// Bytes of dry-run uploads kept for Apply, over all sessions (beyond it the oldest go, and
/// their Apply asks for the file again).
pub const MAX_PENDING_IMPORT_BYTES: u64 = 128 * 1024 * 1024;

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
    pub bytes: axum::body::Bytes,
}

/// A signed-in page session. It holds the token's digest, not the token, and is valid only
/// while that token is still in the file.
pub struct Session {
    pub token_name: String,
    token_digest: [u8; 32],
    pub csrf: String,
    started: Instant,
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
    /// Dry-run uploads waiting for Apply, by their session's CSRF token, weighed by size:
    /// however many sessions upload, they hold at most [`MAX_PENDING_IMPORT_BYTES`] in all.
    pending_imports: moka::sync::Cache<String, Arc<PendingImport>>,
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
            pending_imports: moka::sync::Cache::builder()
                .weigher(|_, p: &Arc<PendingImport>| u32::try_from(p.bytes.len()).unwrap_or(u32::MAX).max(1))
                .max_capacity(MAX_PENDING_IMPORT_BYTES)
                .time_to_idle(SESSION_IDLE)
                .build(),
        }
    }
}

/// The address an admin request counts against: the peer itself. The admin listener believes
/// no `X-Forwarded-For` (with loopback as a trusted proxy of the public port, any local process
/// could otherwise claim a fresh address per request and escape every limit here).
pub fn client_of(peer: SocketAddr) -> IpAddr {
    rate_limit::counted_as(peer.ip().to_canonical())
}

impl Gate {
    fn tokens(&self, settings: &Settings) -> Result<Arc<AdminTokens>, Refusal> {
        let admin = settings.admin.as_ref().ok_or(Refusal::Off)?;
        Ok(self.tokens.current(&admin.token_file)?)
    }

    /// Takes one of `client`'s attempts for the window, or the seconds until it may try again.
    /// Taken before the token is compared (and given back when it was right), so that
    /// requests racing each other cannot all pass the check before any failure is counted.
    fn take_attempt(&self, client: IpAddr) -> Result<Arc<Mutex<Failures>>, u64> {
        let entry = self.failures.get_with(client, || {
            Arc::new(Mutex::new(Failures {
                count: 0,
                since: Instant::now(),
            }))
        });
        let mut f = entry.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = f.since.elapsed();
        if elapsed >= FAILURE_WINDOW {
            *f = Failures {
                count: 0,
                since: Instant::now(),
            };
        } else if f.count >= MAX_FAILURES {
            // Rounded up: a client that waits this long is let in again.
            return Err((FAILURE_WINDOW - elapsed).as_secs_f64().ceil().max(1.0) as u64);
        }
        f.count += 1;
        drop(f);
        Ok(entry)
    }

    /// The name of the token `presented` is. A wrong token counts as a failed attempt of
    /// `client`; no token at all does not (a health probe or a mistyped URL must not lock the
    /// desk out). An address out of attempts is refused before anything is compared.
    fn check_token(&self, settings: &Settings, client: IpAddr, presented: Option<&str>) -> Result<String, Refusal> {
        let tokens = self.tokens(settings)?;
        let Some(presented) = presented.map(str::trim).filter(|t| !t.is_empty()) else {
            return Err(Refusal::Missing);
        };
        let attempt = self.take_attempt(client).map_err(Refusal::TooMany)?;
        match tokens.name_of(presented) {
            Some(name) => {
                let mut f = attempt.lock().unwrap_or_else(|p| p.into_inner());
                f.count = f.count.saturating_sub(1);
                Ok(name.to_string())
            }
            None => {
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
        // Every cookie of the name: another service on this host may have planted one (cookies
        // do not keep to ports), and it must not hide the desk's own.
        let tokens = self.tokens(settings).ok()?;
        cookies::get_all(headers, SESSION_COOKIE).find_map(|id| {
            let session = self.sessions.get(id)?;
            let still_valid = session.started.elapsed() < SESSION_MAX
                && tokens.name_of_digest(&session.token_digest) == Some(session.token_name.as_str());
            if !still_valid {
                self.sessions.invalidate(id);
                self.pending_imports.invalidate(&session.csrf);
                return None;
            }
            Some(session)
        })
    }

    /// The upload a session's dry run reported on, kept until it is applied or replaced.
    pub fn keep_import(&self, session: &Session, pending: PendingImport) {
        self.pending_imports.insert(session.csrf.clone(), Arc::new(pending));
    }

    /// The session's pending upload, if `id` names it; taken, so it is applied once.
    pub fn take_import(&self, session: &Session, id: &str) -> Option<Arc<PendingImport>> {
        let pending = self.pending_imports.get(&session.csrf).filter(|p| p.id == id)?;
        self.pending_imports.invalidate(&session.csrf);
        Some(pending)
    }

    /// Ends the request's page session; the cookie that clears it.
    pub fn sign_out(&self, headers: &HeaderMap) -> String {
        for id in cookies::get_all(headers, SESSION_COOKIE) {
            if let Some(session) = self.sessions.remove(id) {
                self.pending_imports.invalidate(&session.csrf);
            }
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
