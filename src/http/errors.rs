//! Every way a request can fail, with its status, stable code, user text and log line.

use axum::http::StatusCode;
use axum::response::Response;

use super::pages::{error_page, ErrorText, Lang};
use crate::identity::linking::LinkResponseError;
use crate::identity::IdentityError;
use crate::saml::xml::escape;
use crate::saml::ValidationError;

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
    #[error("the target {0:?} is not an allowed address for this app")]
    TargetNotAllowed(String),
    #[error("the ACS request is malformed: {0}")]
    BadRequest(&'static str),
    #[error("no pending login for this RelayState (expired, already used, or never started)")]
    LoginStateMissing,
    #[error("the login was started in another browser (login cookie missing or different)")]
    BrowserMismatch,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("assertion {0} was already used (replay)")]
    Replay(String),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("the state store is unavailable: {0}")]
    StoreUnavailable(String),
    #[error("the state store takes no more pending logins for now: {0}")]
    StoreFull(String),
    #[error(transparent)]
    Metadata(#[from] crate::saml::metadata_registry::MetadataUnavailable),
    #[error("the link store is unavailable: {0}")]
    LinkStoreUnavailable(String),
    #[error("the app behind the bridge cannot be reached: {0}")]
    UpstreamUnavailable(String),
    #[error("the app behind the bridge did not answer in time")]
    UpstreamTimeout,
    #[error(transparent)]
    Redirect(#[from] crate::saml::redirect::RedirectError),
    #[error(transparent)]
    Logout(#[from] crate::saml::logout::LogoutError),
    #[error("the LogoutResponse answers no logout this bridge started")]
    LogoutStateMissing,
    #[error("this LogoutRequest was already used")]
    LogoutReplayed,
    #[error(transparent)]
    LinkResponse(#[from] LinkResponseError),
    #[error("no pending link for this link_response (expired, already used, or never started)")]
    LinkStateMissing,
    #[error("the link was started in another browser (link cookie missing or different)")]
    LinkBrowserMismatch,
    #[error("too many requests from {address}; try again in {retry_after} s")]
    RateLimited { address: String, retry_after: u64 },
    #[error("{0}; try again in a second")]
    Busy(crate::cpu_pool::Busy),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::store::StoreError> for LoginError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Full(why) => LoginError::StoreFull(why),
            crate::store::StoreError::Unavailable(why) => LoginError::StoreUnavailable(why),
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
            LoginError::TargetNotAllowed(_) => "target_not_allowed",
            LoginError::BadRequest(_) => "acs_bad_request",
            LoginError::LoginStateMissing => "login_state_missing",
            LoginError::BrowserMismatch => "login_browser_mismatch",
            LoginError::Invalid(e) => e.code(),
            LoginError::Replay(_) => "assertion_replayed",
            LoginError::Identity(e) => e.code(),
            LoginError::StoreUnavailable(_) => "store_unavailable",
            LoginError::StoreFull(_) => "store_full",
            LoginError::Metadata(
                crate::saml::metadata_registry::MetadataUnavailable::NotYet(_)
                | crate::saml::metadata_registry::MetadataUnavailable::Refused(..),
            ) => "metadata_unavailable",
            LoginError::Metadata(crate::saml::metadata_registry::MetadataUnavailable::Expired(..)) => {
                "metadata_expired"
            }
            LoginError::LinkStoreUnavailable(_) => "link_store_unavailable",
            LoginError::UpstreamUnavailable(_) => "upstream_unavailable",
            LoginError::UpstreamTimeout => "upstream_timeout",
            LoginError::Redirect(e) => e.code(),
            LoginError::Logout(e) => e.code(),
            LoginError::LogoutStateMissing => "logout_state_missing",
            LoginError::LogoutReplayed => "logout_replayed",
            LoginError::LinkResponse(e) => e.code(),
            LoginError::LinkStateMissing => "link_state_missing",
            LoginError::LinkBrowserMismatch => "link_browser_mismatch",
            LoginError::RateLimited { .. } => "rate_limited",
            LoginError::Busy(_) => "busy",
            LoginError::Internal(_) => "internal_error",
        }
    }

    /// When a client should come back (`Retry-After`), for refusals that pass by themselves.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            LoginError::RateLimited { retry_after, .. } => Some(*retry_after),
            // A full validation pool drains in milliseconds.
            LoginError::Busy(_) => Some(1),
            _ => None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            LoginError::UnknownApp => StatusCode::NOT_FOUND,
            LoginError::Identity(IdentityError::SchoolNotActivated(_) | IdentityError::SchoolMissing) => {
                StatusCode::FORBIDDEN
            }
            LoginError::Identity(_) => StatusCode::FORBIDDEN,
            LoginError::StoreUnavailable(_)
            | LoginError::StoreFull(_)
            | LoginError::Metadata(_)
            | LoginError::Busy(_)
            | LoginError::LinkStoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            LoginError::UpstreamUnavailable(_) | LoginError::UpstreamUpgradeInvalid => StatusCode::BAD_GATEWAY,
            LoginError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            LoginError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            LoginError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn text(&self, app_name: &str) -> ErrorText {
        let app = escape(app_name);
        let restart_nl = format!("Ga terug naar je elo en klik opnieuw op de link naar {app}.");
        let restart_en = format!("Go back to your learning environment and click the link to {app} again.");
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
            LoginError::TargetNotAllowed(_) => ErrorText {
                title_nl: "Ongeldige doorverwijzing",
                title_en: "Invalid redirect",
                body_nl: "De link wil je na het inloggen naar een adres sturen dat niet bij deze app hoort. Gebruik de link uit je elo.".into(),
                body_en: "The link wants to send you to an address that does not belong to this app after login. Please use the link from your learning environment.".into(),
            },
            LoginError::LoginStateMissing | LoginError::BrowserMismatch => ErrorText {
                title_nl: "Inloggen verlopen",
                title_en: "Login expired",
                body_nl: format!("Het inloggen duurde te lang, is al afgerond, of is in een andere browser begonnen. {restart_nl}"),
                body_en: format!("The login took too long, was already finished, or was started in another browser. {restart_en}"),
            },
            LoginError::Invalid(ValidationError::IdpStatus { code, message }) => ErrorText {
                title_nl: "Inloggen bij je school is niet gelukt",
                title_en: "Signing in at your school did not succeed",
                body_nl: format!(
                    "Entree meldt: <code>{}</code>{}. {restart_nl}",
                    escape(code),
                    message.as_deref().map(|m| format!(" ({})", escape(m))).unwrap_or_default()
                ),
                body_en: format!(
                    "Entree reports: <code>{}</code>{}. {restart_en}",
                    escape(code),
                    message.as_deref().map(|m| format!(" ({})", escape(m))).unwrap_or_default()
                ),
            },
            LoginError::Invalid(ValidationError::Expired(_) | ValidationError::ConfirmationExpired(_) | ValidationError::NotYetValid(_)) => ErrorText {
                title_nl: "Inloggegevens verlopen",
                title_en: "Login data expired",
                body_nl: format!("De inloggegevens van Entree zijn verlopen of nog niet geldig. Staat de klok van je computer goed? {restart_nl}"),
                body_en: format!("The login data from Entree expired or is not valid yet. Is your computer's clock right? {restart_en}"),
            },
            // The one refusal that a config key can lift: the page names it for whoever the
            // user sends the reference to (the message in the log line names it too).
            LoginError::Invalid(ValidationError::CbcUnauthenticated(_)) => ErrorText {
                title_nl: "Inloggen geweigerd",
                title_en: "Login refused",
                body_nl: format!("De inloggegevens zijn versleuteld met AES-CBC in een bericht zonder handtekening en daarom geweigerd. {restart_nl} Voor de beheerder van {app}: de identity provider moet het hele bericht ondertekenen of AES-GCM gebruiken; wie het risico (padding oracle) aanvaardt, zet <code>allow_cbc = true</code> bij de federatie (<code>[federations.…]</code>)."),
                body_en: format!("The login data was encrypted with AES-CBC in a message without a signature, and was refused. {restart_en} For the {app} administrator: the identity provider must sign the whole Response or use AES-GCM; to accept the risk (a padding oracle), set <code>allow_cbc = true</code> on the federation (<code>[federations.…]</code>)."),
            },
            LoginError::Invalid(_) | LoginError::Replay(_) | LoginError::BadRequest(_) => ErrorText {
                title_nl: "Inloggen geweigerd",
                title_en: "Login refused",
                body_nl: format!("De inloggegevens konden niet worden gecontroleerd en zijn geweigerd. {restart_nl} Blijft dit gebeuren, neem dan contact op met de helpdesk van {app}."),
                body_en: format!("The login data could not be verified and was refused. {restart_en} If this keeps happening, contact the {app} help desk."),
            },
            LoginError::Identity(IdentityError::SchoolNotActivated(brin)) => ErrorText {
                title_nl: "Je school gebruikt deze app nog niet",
                title_en: "Your school does not use this app yet",
                body_nl: format!(
                    "Je school (BRIN <code>{}</code>) heeft {app} nog niet geactiveerd. De school moet de dienst aanzetten in Mijn Entree Federatie en de activatie doorgeven aan de helpdesk van {app}. Vraag je docent of ict-coördinator.",
                    escape(brin)
                ),
                body_en: format!(
                    "Your school (BRIN <code>{}</code>) has not activated {app} yet. The school must switch the service on in Mijn Entree Federatie and tell the {app} help desk. Please ask your teacher or ICT coordinator.",
                    escape(brin)
                ),
            },
            LoginError::Identity(IdentityError::SchoolMissing) => ErrorText {
                title_nl: "School onbekend",
                title_en: "School unknown",
                body_nl: format!("Entree heeft niet doorgegeven bij welke school je hoort, dus {app} kan je niet toelaten. Vraag je ict-coördinator om de attributen in Entree te controleren."),
                body_en: format!("Entree did not tell which school you belong to, so {app} cannot let you in. Ask your ICT coordinator to check the attributes in Entree."),
            },
            LoginError::Identity(IdentityError::ValueNotClean { .. }) => ErrorText {
                title_nl: "Gegevens onbruikbaar",
                title_en: "Account details unusable",
                body_nl: format!("Entree gaf gegevens over je door (je nummer of school) die {app} niet veilig kan gebruiken, dus je bent niet ingelogd. Er is niets opgeslagen. Vraag je ict-coördinator om je gegevens in Entree te laten controleren en noem de referentie hieronder."),
                body_en: format!("Entree sent details about you (your number or school) that {app} cannot use safely, so you have not been signed in. Nothing was stored. Ask your ICT coordinator to have your details in Entree checked, and mention the reference below."),
            },
            LoginError::Identity(_) => ErrorText {
                title_nl: "Nog geen account",
                title_en: "No account yet",
                body_nl: format!("Er is in {app} nog geen account dat bij jouw schoolaccount hoort. Vraag je docent of de beheerder van {app} op school om je account aan te maken of te koppelen."),
                body_en: format!("There is no account in {app} that belongs to your school account yet. Ask your teacher or the {app} administrator at your school to create or link your account."),
            },
            LoginError::Redirect(_) | LoginError::Logout(_) | LoginError::LogoutStateMissing | LoginError::LogoutReplayed => ErrorText {
                title_nl: "Uitloggen niet bevestigd",
                title_en: "Logout not confirmed",
                body_nl: format!("Het uitlogbericht kon niet worden gecontroleerd en is genegeerd. Je sessie bij {app} is wel beëindigd als je zelf uitlogde. Sluit bij twijfel je browser."),
                body_en: format!("The logout message could not be verified and was ignored. Your session with {app} did end if you logged out yourself. If in doubt, close your browser."),
            },
            LoginError::LinkResponse(_) | LoginError::LinkStateMissing | LoginError::LinkBrowserMismatch => ErrorText {
                title_nl: "Koppelen niet gelukt",
                title_en: "Linking did not work",
                body_nl: format!("Het koppelen van je account aan {app} kon niet worden afgerond: het duurde te lang, is al gebruikt, of is in een andere browser begonnen. Er is niets opgeslagen. {restart_nl}"),
                body_en: format!("Linking your account to {app} could not be finished: it took too long, was already used, or was started in another browser. Nothing was stored. {restart_en}"),
            },
            LoginError::RateLimited { retry_after, .. } => ErrorText {
                title_nl: "Even geduld",
                title_en: "Please wait a moment",
                body_nl: format!("Er komen nu te veel aanvragen van jouw netwerk binnen. Probeer het over {retry_after} seconden opnieuw."),
                body_en: format!("Too many requests are coming from your network right now. Please try again in {retry_after} seconds."),
            },
            LoginError::Busy(_) => ErrorText {
                title_nl: "Even geduld",
                title_en: "Please wait a moment",
                body_nl: format!("Er loggen nu heel veel mensen tegelijk in bij {app}. Probeer het over een paar seconden opnieuw: ga terug en vernieuw de pagina, of klik opnieuw op de link in je elo."),
                body_en: format!("A great many people are signing in to {app} at this moment. Please try again in a few seconds: go back and reload the page, or click the link in your learning environment again."),
            },
            LoginError::Metadata(_) => ErrorText {
                title_nl: "Inloggen via Entree kan nu niet",
                title_en: "Signing in through Entree is not possible right now",
                body_nl: format!("{app} kan de gegevens van Entree op dit moment niet controleren, dus inloggen is veilig uitgeschakeld. De beheerder is gewaarschuwd. Probeer het later opnieuw."),
                body_en: format!("{app} cannot check Entree's details at the moment, so signing in has been switched off to keep you safe. The administrators have been alerted. Please try again later."),
            },
            LoginError::StoreUnavailable(_)
            | LoginError::StoreFull(_)
            | LoginError::LinkStoreUnavailable(_)
            | LoginError::UpstreamUnavailable(_)
            | LoginError::UpstreamUpgradeInvalid
            | LoginError::UpstreamTimeout
            | LoginError::Internal(_) => ErrorText {
                title_nl: "Tijdelijke storing",
                title_en: "Temporary problem",
                body_nl: format!("Inloggen lukt nu even niet door een storing bij {app}. Probeer het over een paar minuten opnieuw."),
                body_en: format!("Signing in does not work right now because of a problem at {app}. Please try again in a few minutes."),
            },
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
