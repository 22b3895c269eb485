//! Every way a request can fail, with its status, stable code, user text and log line. The
//! login use case's own failures are [`LoginFailure`] (in `login/`); this type adds the
//! wire's: addresses, hosts, the proxy, rate limits, malformed requests.

use axum::http::StatusCode;
use axum::response::Response;

use super::pages::{error_page, ErrorText, Lang};
pub use crate::login::LoginFailure;
use crate::login::PageText;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("no app is configured at this address")]
    UnknownApp,
    #[error("the path has dot segments, encoded slashes or backslashes")]
    PathNotAllowed,
    #[error("the path has path parameters (`;`) and this app does not allow them")]
    PathParametersNotAllowed,
    #[error("the request has {0} Host headers; exactly one is required")]
    HostHeaderInvalid(usize),
    #[error("the browser presents several valid sessions for this app (one was planted)")]
    SessionCookieAmbiguous,
    #[error("the upstream switched to WebSocket without a valid Sec-WebSocket-Accept")]
    UpstreamUpgradeInvalid,
    #[error("the ACS request is malformed: {0}")]
    BadRequest(&'static str),
    #[error("the state store is unavailable: {0}")]
    StoreUnavailable(String),
    #[error("the app behind the bridge cannot be reached: {0}")]
    UpstreamUnavailable(String),
    #[error("the app behind the bridge did not answer in time")]
    UpstreamTimeout,
    #[error("too many requests from {address}; try again in {retry_after} s")]
    RateLimited { address: String, retry_after: u64 },
    #[error("internal error: {0}")]
    Internal(String),
    /// The login use case failed (start, ACS, link completion, logout).
    #[error(transparent)]
    Login(#[from] LoginFailure),
}

/// The proxy checks a session's identity values before it hands them on, as the login did.
impl From<crate::identity::IdentityError> for LoginError {
    fn from(e: crate::identity::IdentityError) -> Self {
        LoginError::Login(LoginFailure::Identity(e))
    }
}

impl From<PageText> for ErrorText {
    fn from(t: PageText) -> Self {
        ErrorText {
            title_nl: t.title_nl,
            title_en: t.title_en,
            body_nl: t.body_nl,
            body_en: t.body_en,
        }
    }
}

impl LoginError {
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::UnknownApp => "unknown_app",
            LoginError::PathNotAllowed => "path_not_allowed",
            LoginError::PathParametersNotAllowed => "path_parameters_not_allowed",
            LoginError::HostHeaderInvalid(_) => "host_header_invalid",
            LoginError::SessionCookieAmbiguous => "session_cookie_ambiguous",
            LoginError::UpstreamUpgradeInvalid => "upstream_upgrade_invalid",
            LoginError::BadRequest(_) => "acs_bad_request",
            LoginError::StoreUnavailable(_) => "store_unavailable",
            LoginError::UpstreamUnavailable(_) => "upstream_unavailable",
            LoginError::UpstreamTimeout => "upstream_timeout",
            LoginError::RateLimited { .. } => "rate_limited",
            LoginError::Internal(_) => "internal_error",
            LoginError::Login(failure) => failure.code(),
        }
    }

    /// When a client should come back (`Retry-After`), for refusals that pass by themselves.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            LoginError::RateLimited { retry_after, .. } => Some(*retry_after),
            LoginError::Login(failure) => failure.retry_after(),
            _ => None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            LoginError::UnknownApp => StatusCode::NOT_FOUND,
            LoginError::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            LoginError::UpstreamUnavailable(_) | LoginError::UpstreamUpgradeInvalid => StatusCode::BAD_GATEWAY,
            LoginError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            LoginError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            LoginError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            LoginError::Login(failure) => {
                StatusCode::from_u16(failure.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn text(&self, app_name: &str) -> ErrorText {
        let app = crate::saml::xml::escape(app_name);
        match self {
            LoginError::PathParametersNotAllowed => ErrorText {
                title_nl: "Ongeldig adres",
                title_en: "Invalid address",
                body_nl: "Dit adres bevat een puntkomma (;), die deze app niet toestaat. Controleer de link.".into(),
                body_en: "This address contains a semicolon (;), which this app does not allow. Please check the link.".into(),
            },
            LoginError::HostHeaderInvalid(_) => ErrorText {
                title_nl: "Ongeldig verzoek",
                title_en: "Invalid request",
                body_nl: "Je browser of een programma ertussen stuurde een verzoek dat niet klopt (geen of meer dan één Host). Probeer het opnieuw.".into(),
                body_en: "Your browser or a program in between sent a malformed request (no Host, or more than one). Please try again.".into(),
            },
            LoginError::SessionCookieAmbiguous => ErrorText {
                title_nl: "Log opnieuw in",
                title_en: "Please sign in again",
                body_nl: format!("Je browser stuurt meer dan één sessie voor {app} mee, dus het is niet zeker wie je bent. Log uit en opnieuw in via je elo, of wis de cookies van deze site."),
                body_en: format!("Your browser sends more than one session for {app}, so it is not certain who you are. Log out and in again through your learning environment, or clear this site's cookies."),
            },
            LoginError::PathNotAllowed => ErrorText {
                title_nl: "Ongeldig adres",
                title_en: "Invalid address",
                body_nl: "Dit adres bevat onderdelen die niet zijn toegestaan. Controleer de link.".into(),
                body_en: "This address contains parts that are not allowed. Please check the link.".into(),
            },
            LoginError::UnknownApp => ErrorText {
                title_nl: "Onbekend adres",
                title_en: "Unknown address",
                body_nl: "Op dit adres is geen app ingesteld. Controleer de link.".into(),
                body_en: "No app is configured at this address. Please check the link.".into(),
            },
            LoginError::BadRequest(_) => crate::login::refused_text(app_name).into(),
            LoginError::RateLimited { retry_after, .. } => ErrorText {
                title_nl: "Even geduld",
                title_en: "Please wait a moment",
                body_nl: format!("Er komen nu te veel aanvragen van jouw netwerk binnen. Probeer het over {retry_after} seconden opnieuw."),
                body_en: format!("Too many requests are coming from your network right now. Please try again in {retry_after} seconds."),
            },
            LoginError::StoreUnavailable(_)
            | LoginError::UpstreamUnavailable(_)
            | LoginError::UpstreamUpgradeInvalid
            | LoginError::UpstreamTimeout
            | LoginError::Internal(_) => crate::login::temporary_problem_text(app_name).into(),
            LoginError::Login(failure) => failure.text(app_name).into(),
        }
    }

    /// Logs the precise reason with a fresh correlation id and renders the user's page.
    pub fn respond(&self, lang: Lang, app: Option<&str>) -> Response {
        let correlation_id = hex_id();
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(
                correlation_id,
                code = self.code(),
                app,
                status = status.as_u16(),
                "login failed: {self}"
            );
        } else {
            tracing::warn!(
                correlation_id,
                code = self.code(),
                app,
                status = status.as_u16(),
                "login rejected: {self}"
            );
        }
        let mut response = error_page(
            lang,
            status,
            self.code(),
            &correlation_id,
            &self.text(app.unwrap_or("de app")),
        );
        // For the counters in `/metrics`, which look at responses, not at handlers.
        response.extensions_mut().insert(ErrorCode(self.code()));
        if let Some(seconds) = self.retry_after() {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
        }
        response
    }
}

/// The error code of an error page, carried on the response for the metrics.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

fn hex_id() -> String {
    crate::keys::random_bytes::<8>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
