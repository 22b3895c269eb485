//! Every way a request can fail, with its status, stable code and user text, and the error
//! layer: handlers return their errors (as [`Failure`]s in the response's extensions) and
//! [`error_layer`] alone writes each one's page in the browser's language, its log line with
//! a fresh reference, and its counts in `/metrics`. docs/errors.md lists every code; a test
//! below keeps the two in step.
//! The login use case's own failures are [`LoginFailure`] (in `login/`); [`LoginError`]
//! adds the wire's: addresses, hosts, the proxy, rate limits, malformed requests.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::pages::{error_page, AppLook, ErrorText, Lang};
use super::routes::SamlRoute;
use super::Shared;
use crate::login::Diagnosis;
pub use crate::login::LoginFailure;
use crate::login::PageText;
use crate::store::reports::FailureReport;

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
    /// A route asked with a method it does not answer: a GET on the ACS is the back button
    /// or a bookmark of the page the IdP posted to.
    #[error("{method} on the {} route, which answers {} only", route.path(), route.method())]
    MethodNotAllowed { method: String, route: SamlRoute },
    #[error("the ACS request is malformed: {0}")]
    BadRequest(&'static str),
    /// The store's own message, which says it is the state store.
    #[error("{0}")]
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
            LoginError::MethodNotAllowed { .. } => "method_not_allowed",
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
            LoginError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
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

    /// What the user reads, naming the app (`app_name` is plain text: it is escaped here).
    pub fn text(&self, app_name: &str) -> ErrorText {
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
            LoginError::MethodNotAllowed {
                route: SamlRoute::Acs, ..
            } => ErrorText {
                title_nl: "Deze pagina kun je niet opnieuw openen",
                title_en: "This page cannot be opened again",
                body_nl: format!("Dit adres neemt alleen de inloggegevens van Entree aan, eenmalig: de terugknop of een bladwijzer brengt je hier zonder. Log opnieuw in bij {app} met de knop hieronder of via de link in je elo."),
                body_en: format!("This address only takes the sign-in from Entree, once: the back button or a bookmark brings you here without it. Log in to {app} again with the button below or through the link in your learning environment."),
            },
            LoginError::MethodNotAllowed { .. } => ErrorText {
                title_nl: "Ongeldig verzoek",
                title_en: "Invalid request",
                body_nl: format!("Dit adres van {app} kan niet zo worden opgevraagd. Ga verder met de knop hieronder."),
                body_en: format!("This address of {app} cannot be asked for this way. Go on with the button below."),
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
}

impl IntoResponse for LoginError {
    fn into_response(self) -> Response {
        Failure::new(self).into_response()
    }
}

/// Which store a failure is the fault of, for `entree_bridge_store_errors_total{store}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedStore {
    /// Sessions, pending logins and links, the replay cache.
    State,
    /// The link store (SQLite, PostgreSQL).
    Links,
}

impl FailedStore {
    pub fn label(self) -> &'static str {
        match self {
            FailedStore::State => "state",
            FailedStore::Links => "links",
        }
    }
}

/// What the error layer needs of an error a request ended in. The message (`Display`) is for
/// the log line only; the user reads [`RequestError::text`].
pub trait RequestError: std::error::Error + Send + Sync + 'static {
    /// The stable error code: on the page, in the log line, in `logins_total{error}`, and
    /// in docs/errors.md.
    fn code(&self) -> &'static str;
    fn status(&self) -> StatusCode;
    /// The page's title and text in both languages, naming the app.
    fn text(&self, app_name: &str) -> ErrorText;
    /// When a client should come back (`Retry-After`), for refusals that pass by themselves.
    fn retry_after(&self) -> Option<u64> {
        None
    }
    fn failed_store(&self) -> Option<FailedStore> {
        None
    }
    /// The BRIN of a school refused because it has not activated the app.
    fn refused_school(&self) -> Option<&str> {
        None
    }
}

impl RequestError for LoginError {
    fn code(&self) -> &'static str {
        LoginError::code(self)
    }

    fn status(&self) -> StatusCode {
        LoginError::status(self)
    }

    fn text(&self, app_name: &str) -> ErrorText {
        LoginError::text(self, app_name)
    }

    fn retry_after(&self) -> Option<u64> {
        LoginError::retry_after(self)
    }

    fn failed_store(&self) -> Option<FailedStore> {
        match self {
            LoginError::StoreUnavailable(_)
            | LoginError::Login(LoginFailure::StoreUnavailable(_) | LoginFailure::StoreFull(_)) => {
                Some(FailedStore::State)
            }
            LoginError::Login(LoginFailure::LinkStoreUnavailable(_)) => Some(FailedStore::Links),
            _ => None,
        }
    }

    fn refused_school(&self) -> Option<&str> {
        match self {
            LoginError::Login(LoginFailure::Identity(crate::identity::IdentityError::SchoolNotActivated {
                brin,
                ..
            })) => Some(brin),
            _ => None,
        }
    }
}

/// An error on its way from a handler to [`error_layer`], in the extensions of a response
/// that has the error's status and no body yet. Headers the handler adds to that response
/// (cookies it clears, `Cache-Control`) stay on the page.
#[derive(Clone)]
pub struct Failure {
    error: Arc<dyn RequestError>,
    /// The app whose route failed, as its page shows it (name, ways on, contact), once the
    /// router knows the app.
    app: Option<Arc<AppLook>>,
    /// The config name of that app (failure reports and metrics name it).
    app_name: Option<Arc<str>>,
    /// The page's language whatever the browser asks (SP metadata errors are in English).
    lang: Option<Lang>,
    /// How far the login got (the ACS's checks), for its failure report.
    diagnosis: Option<Box<Diagnosis>>,
}

impl Failure {
    pub fn new(error: impl RequestError) -> Self {
        Failure {
            error: Arc::new(error),
            app: None,
            app_name: None,
            lang: None,
            diagnosis: None,
        }
    }

    /// The page in `lang`, whatever the browser's Accept-Language says.
    pub fn in_language(mut self, lang: Lang) -> Self {
        self.lang = Some(lang);
        self
    }

    pub fn code(&self) -> &'static str {
        self.error.code()
    }

    /// Whether a failure report is kept: a failure of an app's route, except those that come
    /// in floods and pass by themselves (a full rate limit or validation queue), which
    /// would only spend the hour's budget.
    fn reported(&self) -> bool {
        self.app_name.is_some() && !matches!(self.error.code(), "rate_limited" | "busy" | "store_full")
    }

    /// The failure report kept under the page's reference.
    fn report(&self, reference: &str) -> Option<FailureReport> {
        let app = self.app_name.as_deref()?;
        let diagnosis = self.diagnosis.as_deref().cloned().unwrap_or_default();
        Some(FailureReport {
            reference: reference.to_string(),
            created_at: chrono::Utc::now().timestamp(),
            app: app.to_string(),
            code: self.error.code().to_string(),
            status: self.error.status().as_u16(),
            message: self.error.to_string(),
            school: diagnosis
                .school
                .or_else(|| self.error.refused_school().map(str::to_string)),
            person: diagnosis.person,
            instance: instance_name().to_string(),
            checks: diagnosis.checks,
        })
    }

    /// The log line, with its `correlation_id` (the page's reference) and the app's config
    /// name. Addresses nobody serves (`/favicon.ico`, scanners) are for debugging only; a
    /// flood of one cause (a store away, an upstream down, a full queue or rate limit) is
    /// said once per interval with its count ([`super::repeats`]).
    fn log(&self, correlation_id: &str, repeats: &super::repeats::Repeats) {
        let error = &*self.error;
        let (status, code, app) = (error.status(), error.code(), self.app_name.as_deref());
        if code == "unknown_app" {
            tracing::debug!(
                correlation_id,
                code,
                app,
                status = status.as_u16(),
                "no such address: {error}"
            );
            return;
        }
        let floods = status.is_server_error() || code == "rate_limited";
        let unsaid = match floods.then(|| {
            repeats.note(
                code,
                self.app_name.clone(),
                status.is_server_error(),
                std::time::Instant::now(),
            )
        }) {
            Some(super::repeats::Verdict::Counted) => return,
            Some(super::repeats::Verdict::Log { unsaid }) => unsaid,
            None => 0,
        };
        if status.is_server_error() {
            tracing::error!(
                correlation_id,
                code,
                app,
                status = status.as_u16(),
                repeated = unsaid,
                "request failed: {error}"
            );
        } else {
            tracing::warn!(
                correlation_id,
                code,
                app,
                status = status.as_u16(),
                "request refused: {error}"
            );
        }
    }

    /// The page and the `Retry-After`, on top of the handler's response (`placeholder`: its
    /// headers, extensions).
    fn render(self, browser_lang: Lang, placeholder: Response, correlation_id: &str) -> Response {
        let error = &*self.error;
        let (status, code, look) = (error.status(), error.code(), self.app.as_deref());
        let lang = self.lang.unwrap_or(browser_lang);
        let text = error.text(look.map_or("de app", |l| l.display_name.as_str()));
        let page = error_page(lang, status, code, correlation_id, &text, look);
        let (handler, _) = placeholder.into_parts();
        let (mut parts, body) = page.into_parts();
        // As if the handler had set them on the page: its values replace the page's.
        for name in handler.headers.keys() {
            parts.headers.remove(name);
        }
        for (name, value) in handler.headers.iter() {
            parts.headers.append(name, value.clone());
        }
        if let Some(seconds) = error.retry_after() {
            parts
                .headers
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
        }
        parts.extensions = handler.extensions;
        Response::from_parts(parts, body)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut response = self.error.status().into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Names the app on a failed response of one of its routes (its page and log line name it).
pub fn name_app(response: &mut Response, app: &crate::config::App) {
    if response.extensions().get::<Failure>().is_some() {
        name_app_as(response, AppLook::of(app), &app.name);
    }
}

fn name_app_as(response: &mut Response, look: AppLook, name: &str) {
    if let Some(failure) = response.extensions_mut().get_mut::<Failure>() {
        failure.app.get_or_insert_with(|| Arc::new(look));
        failure.app_name.get_or_insert_with(|| Arc::from(name));
    }
}

/// Adds a login's diagnosis to the failure a response carries, for its failure report.
pub fn attach_diagnosis(response: &mut Response, diagnosis: Diagnosis) {
    if let Some(failure) = response.extensions_mut().get_mut::<Failure>() {
        failure.diagnosis = Some(Box::new(diagnosis));
    }
}

/// The name of this host, in failure reports ("made on the other instance").
fn instance_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".into())
    })
}

/// Marks a response as the end of a login attempt of `app` (the ACS, link completion), for
/// `entree_bridge_logins_total`: `rejected` with the error code, `linking`, or `ok`.
#[derive(Debug, Clone)]
pub struct LoginAttempt {
    pub app: String,
}

/// What the error layer works with: the metrics (they outlive reloads, so the first state's
/// serve), and the state in force for failure reports (`None`: none are kept).
#[derive(Clone)]
pub struct ErrorLayer {
    pub metrics: Arc<super::Metrics>,
    pub shared: Option<Arc<Shared>>,
}

/// The error layer, round every route: renders the [`Failure`] a response carries, counts
/// it (store errors, rejected logins, refused schools) along with the login attempts that
/// succeeded, and keeps its failure report under the page's reference.
pub async fn error_layer(State(layer): State<ErrorLayer>, request: Request, next: Next) -> Response {
    let lang = Lang::from_headers(request.headers());
    let reference = super::request_id::RequestId::of(&request).0;
    let mut response = next.run(request).await;
    let metrics = &layer.metrics;
    let failure = response.extensions_mut().remove::<Failure>();
    if let Some(attempt) = response.extensions_mut().remove::<LoginAttempt>() {
        match &failure {
            Some(f) => metrics.login(&attempt.app, "rejected", f.code()),
            None if response.extensions().get::<super::acs::LinkingStarted>().is_some() => {
                metrics.login(&attempt.app, "linking", "")
            }
            None => metrics.login(&attempt.app, "ok", ""),
        }
    }
    let Some(failure) = failure else {
        return response;
    };
    metrics.refused(failure.app_name.as_deref(), failure.code());
    if let Some(store) = failure.error.failed_store() {
        metrics.store_error(store.label());
    }
    if let (Some(app), Some(school)) = (failure.app_name.as_deref(), failure.error.refused_school()) {
        metrics.school_not_activated(app, school);
    }
    let state = layer.shared.as_ref().map(|s| s.current());
    if let Some(state) = state.filter(|_| failure.reported()) {
        if let Some(report) = failure.report(&reference) {
            // Off the request: the page does not wait for the database, and a database
            // that is away costs the student nothing (the report is counted as failed).
            let links = state.links.clone();
            let counts = metrics.reports.clone();
            let budget = state.settings.support.max_reports_per_hour;
            tokio::spawn(async move { counts.keep(&links, &report, budget).await });
        }
    }
    failure.log(&reference, &metrics.repeats);
    failure.render(lang, response, &reference)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::identity::linking::LinkResponseError;
    use crate::identity::IdentityError;
    use crate::saml::logout::LogoutError;
    use crate::saml::metadata_registry::MetadataUnavailable;
    use crate::saml::redirect::RedirectError;
    use crate::saml::ValidationError;

    const CODE_FN: &str = "fn code(&self) -> &'static str";

    /// The string literals of every `fn code(&self) -> &'static str` body in src, one list per
    /// function: every code the bridge can produce (each `code()` is an exhaustive match).
    fn codes_in_source() -> Vec<Vec<String>> {
        fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).expect("read src").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    rust_files(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
        let mut blocks = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read");
            for (at, _) in text.match_indices(CODE_FN) {
                let body = text[at + CODE_FN.len()..].trim_start();
                if body.starts_with('{') {
                    blocks.push(literals_of_block(body));
                }
            }
        }
        blocks
    }

    /// The code-shaped string literals of the block `text` starts with.
    fn literals_of_block(text: &str) -> Vec<String> {
        let (mut depth, mut found, mut chars) = (0usize, Vec::new(), text.chars());
        while let Some(c) = chars.next() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                '"' => {
                    let mut literal = String::new();
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => literal.extend(chars.next()),
                            '"' => break,
                            c => literal.push(c),
                        }
                    }
                    let code_shaped = literal.starts_with(|c: char| c.is_ascii_lowercase())
                        && literal
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                    if code_shaped {
                        found.push(literal);
                    }
                }
                _ => {}
            }
        }
        found
    }

    /// docs/errors.md: code -> HTTP status, from its tables' rows.
    fn catalogue() -> BTreeMap<String, u16> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join("errors.md");
        let doc = std::fs::read_to_string(path).expect("read docs/errors.md");
        let mut rows = BTreeMap::new();
        for line in doc.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let code = cells[1].trim_matches('`').to_string();
            let status = cells[2]
                .parse()
                .unwrap_or_else(|_| panic!("no status for {code}: {line}"));
            assert!(rows.insert(code.clone(), status).is_none(), "{code} is listed twice");
        }
        rows
    }

    /// One error of every variant of [`LoginError`] (a wrapped family by one of its members).
    fn one_of_each() -> Vec<LoginError> {
        let wire = vec![
            LoginError::UnknownApp,
            LoginError::PathNotAllowed,
            LoginError::PathParametersNotAllowed,
            LoginError::HostHeaderInvalid(2),
            LoginError::SessionCookieAmbiguous,
            LoginError::UpstreamUpgradeInvalid,
            LoginError::BadRequest("no SAMLResponse field"),
            LoginError::MethodNotAllowed {
                method: "GET".into(),
                route: SamlRoute::Acs,
            },
            LoginError::StoreUnavailable("down".into()),
            LoginError::UpstreamUnavailable("refused".into()),
            LoginError::UpstreamTimeout,
            LoginError::RateLimited {
                address: "192.0.2.1".into(),
                retry_after: 3,
            },
            LoginError::Internal("bug".into()),
        ];
        let login = vec![
            LoginFailure::TargetNotAllowed("//evil.example".into()),
            LoginFailure::LoginStateMissing,
            LoginFailure::BrowserMismatch,
            LoginFailure::Replay("_a".into()),
            LoginFailure::AuthnNotFresh,
            LoginFailure::StoreUnavailable("down".into()),
            LoginFailure::StoreFull("full".into()),
            LoginFailure::Metadata(MetadataUnavailable::NotYet("kennisnet".into())),
            LoginFailure::Metadata(MetadataUnavailable::Expired("kennisnet".into(), "then".into())),
            LoginFailure::LinkStoreUnavailable("down".into()),
            LoginFailure::LogoutStateMissing,
            LoginFailure::LogoutReplayed,
            LoginFailure::LinkStateMissing,
            LoginFailure::LinkBrowserMismatch,
            LoginFailure::LinkAffiliationMismatch {
                person: "p:0".into(),
                class: "employee",
                other: "student".into(),
            },
            LoginFailure::Busy(crate::cpu_pool::Busy { threads: 2, queue: 64 }),
            LoginFailure::Internal("bug".into()),
        ];
        let all: Vec<LoginError> = wire
            .into_iter()
            .chain(login.into_iter().map(LoginError::Login))
            .chain(one_of_each_family())
            .collect();
        // A new variant does not compile here until it has an example above.
        for e in &all {
            match e {
                LoginError::UnknownApp
                | LoginError::PathNotAllowed
                | LoginError::PathParametersNotAllowed
                | LoginError::HostHeaderInvalid(_)
                | LoginError::SessionCookieAmbiguous
                | LoginError::UpstreamUpgradeInvalid
                | LoginError::BadRequest(_)
                | LoginError::MethodNotAllowed { .. }
                | LoginError::StoreUnavailable(_)
                | LoginError::UpstreamUnavailable(_)
                | LoginError::UpstreamTimeout
                | LoginError::RateLimited { .. }
                | LoginError::Internal(_) => {}
                LoginError::Login(failure) => match failure {
                    LoginFailure::TargetNotAllowed(_)
                    | LoginFailure::LoginStateMissing
                    | LoginFailure::BrowserMismatch
                    | LoginFailure::Invalid(_)
                    | LoginFailure::Replay(_)
                    | LoginFailure::AuthnNotFresh
                    | LoginFailure::Identity(_)
                    | LoginFailure::StoreUnavailable(_)
                    | LoginFailure::StoreFull(_)
                    | LoginFailure::Metadata(_)
                    | LoginFailure::LinkStoreUnavailable(_)
                    | LoginFailure::Redirect(_)
                    | LoginFailure::Logout(_)
                    | LoginFailure::LogoutStateMissing
                    | LoginFailure::LogoutReplayed
                    | LoginFailure::LinkResponse(_)
                    | LoginFailure::LinkStateMissing
                    | LoginFailure::LinkBrowserMismatch
                    | LoginFailure::LinkAffiliationMismatch { .. }
                    | LoginFailure::Busy(_)
                    | LoginFailure::Oidc(_)
                    | LoginFailure::Internal(_) => {}
                },
            }
        }
        all
    }

    /// One member of each wrapped error type whose codes all share one status: the SAML
    /// checks, identity, the Redirect binding, logout messages, link responses.
    fn one_of_each_family() -> Vec<LoginError> {
        [
            LoginFailure::Invalid(ValidationError::NotBase64),
            LoginFailure::Identity(IdentityError::SchoolMissing),
            LoginFailure::Redirect(RedirectError::Malformed),
            LoginFailure::Logout(LogoutError::Stale("then".into())),
            LoginFailure::LinkResponse(LinkResponseError::Expired),
            LoginFailure::Oidc(crate::login::oidc::OidcRefusal::UnknownClient("x".into())),
        ]
        .into_iter()
        .map(LoginError::Login)
        .collect()
    }

    #[test]
    fn the_catalogue_lists_every_code_and_no_other() {
        let produced: BTreeSet<String> = codes_in_source().into_iter().flatten().collect();
        let listed: BTreeSet<String> = catalogue().into_keys().collect();
        let missing: Vec<_> = produced.difference(&listed).collect();
        let unknown: Vec<_> = listed.difference(&produced).collect();
        assert!(
            missing.is_empty(),
            "codes the bridge produces but docs/errors.md lacks: {missing:?}"
        );
        assert!(
            unknown.is_empty(),
            "codes docs/errors.md lists but the bridge never produces: {unknown:?}"
        );
        assert!(produced.len() > 90, "{}", produced.len());
    }

    #[test]
    fn the_catalogue_gives_every_code_its_status() {
        let listed = catalogue();
        for error in one_of_each() {
            let (code, status) = (RequestError::code(&error), RequestError::status(&error).as_u16());
            assert_eq!(listed.get(code), Some(&status), "{code}");
        }
        // Every code of a family's `code()` (the only one that names the member's code) has
        // the member's status.
        let blocks = codes_in_source();
        for error in one_of_each_family() {
            let (code, status) = (RequestError::code(&error), RequestError::status(&error).as_u16());
            let family: Vec<&Vec<String>> = blocks.iter().filter(|b| b.iter().any(|c| c == code)).collect();
            assert_eq!(family.len(), 1, "{code} is named by one code() only");
            for member in family[0] {
                assert_eq!(listed.get(member), Some(&status), "{member} (of {code}'s family)");
            }
        }
    }

    #[tokio::test]
    async fn the_layer_renders_logs_and_counts_a_failure_and_keeps_the_handlers_headers() {
        use axum::http::{header, HeaderValue};
        let metrics = Arc::new(crate::http::Metrics::default());
        let layer = ErrorLayer {
            metrics: metrics.clone(),
            shared: None,
        };
        let app = axum::Router::new()
            .route(
                "/acs",
                axum::routing::post(|| async {
                    let mut response = LoginError::RateLimited {
                        address: "192.0.2.1".into(),
                        retry_after: 7,
                    }
                    .into_response();
                    let look = AppLook {
                        display_name: "Numo <Rekenen>".into(),
                        login_url: "https://numo.example.nl/saml2/kennisnet/login".into(),
                        home_url: "https://numo.example.nl/".into(),
                        contact: Some("help@numo.example.nl".into()),
                        logo_url: None,
                        accent: None,
                    };
                    name_app_as(&mut response, look, "numo");
                    let cookie = HeaderValue::from_static("login=; Max-Age=0");
                    response.headers_mut().append(header::SET_COOKIE, cookie);
                    response.extensions_mut().insert(LoginAttempt { app: "numo".into() });
                    response
                }),
            )
            .route(
                "/links",
                axum::routing::get(|| async {
                    LoginError::Login(LoginFailure::LinkStoreUnavailable("down".into())).into_response()
                }),
            )
            .layer(axum::middleware::from_fn_with_state(layer, error_layer));
        let request = |method: &str, uri: &str| {
            axum::http::Request::builder()
                .method(method)
                .uri(uri)
                .header(header::ACCEPT_LANGUAGE, "en")
                .body(axum::body::Body::empty())
                .expect("request")
        };
        let response = tower_service_call(app.clone(), request("POST", "/acs")).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        assert_eq!(response.headers()[header::SET_COOKIE], "login=; Max-Age=0");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert!(response.extensions().get::<Failure>().is_none(), "rendered once");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        let body = String::from_utf8_lossy(&body);
        assert!(
            body.contains("<html lang=\"en\">") && body.contains("Please wait a moment"),
            "{body}"
        );
        assert!(body.contains("<code>rate_limited</code>"), "{body}");
        tower_service_call(app, request("GET", "/links")).await;
        let text = metrics.render();
        assert!(
            text.contains(r#"entree_bridge_logins_total{app="numo",result="rejected",error="rate_limited"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"entree_bridge_store_errors_total{store="links"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"entree_bridge_store_errors_total{store="state"} 0"#),
            "{text}"
        );
    }

    async fn tower_service_call(app: axum::Router, request: axum::http::Request<axum::body::Body>) -> Response {
        use tower_service::Service;
        let mut app = app;
        app.call(request).await.expect("infallible")
    }
}
