//! How the login use case fails: each failure's stable code (error pages, log lines, metrics
//! and the README's catalogue name it), its HTTP status and the page text the student reads.
//! The codes and statuses are the bridge's interface: they are those the login failures had
//! when they were still variants of `http::errors::LoginError`. The http layer renders a
//! [`LoginFailure`] (log line, correlation id, page); the use case only says what went wrong.

use crate::cpu_pool::Busy;
use crate::identity::linking::LinkResponseError;
use crate::identity::IdentityError;
use crate::saml::logout::LogoutError;
use crate::saml::metadata_registry::MetadataUnavailable;
use crate::saml::redirect::RedirectError;
use crate::saml::xml::escape;
use crate::saml::ValidationError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum LoginFailure {
    #[error("the target {0:?} is not an allowed address for this app")]
    TargetNotAllowed(String),
    #[error("no pending login for this RelayState (expired, already used, or never started)")]
    LoginStateMissing,
    #[error("the login was started in another browser (login cookie missing or different)")]
    BrowserMismatch,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("assertion {0} was already used (replay)")]
    Replay(String),
    /// A forced login (ForceAuthn) answered with an authentication older than the request.
    #[error("the IdP answered a forced login with an older authentication (AuthnInstant before the request)")]
    AuthnNotFresh,
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The store's own message, which says it is the state store.
    #[error("{0}")]
    StoreUnavailable(String),
    #[error("the state store takes no more pending logins for now: {0}")]
    StoreFull(String),
    #[error(transparent)]
    Metadata(#[from] MetadataUnavailable),
    /// The link store's own message (unavailable, or holding unexpected data).
    #[error("{0}")]
    LinkStoreUnavailable(String),
    #[error(transparent)]
    Redirect(#[from] RedirectError),
    #[error(transparent)]
    Logout(#[from] LogoutError),
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
    /// `person.mixed_affiliations = "refuse"`: the account is linked to another kind of person.
    #[error("person code {person} is linked to a {other} already; a {class} may not be linked to it (person.mixed_affiliations = \"refuse\")")]
    LinkAffiliationMismatch {
        /// The pseudonym of the person code (never the code itself in a log line).
        person: String,
        class: &'static str,
        other: String,
    },
    #[error("{0}; try again in a second")]
    Busy(Busy),
    /// An OpenID Connect request that cannot be answered at the client.
    #[error(transparent)]
    Oidc(#[from] super::oidc::OidcRefusal),
    #[error("internal error: {0}")]
    Internal(String),
}

/// A full pending-login budget is its own failure (`store_full`); anything else is the store
/// being unavailable.
impl From<StoreError> for LoginFailure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Full(why) => LoginFailure::StoreFull(why),
            unavailable @ StoreError::Unavailable(_) => LoginFailure::StoreUnavailable(unavailable.to_string()),
        }
    }
}

/// The page text of a failure, in both languages (the http layer picks one). Bodies are
/// HTML: every value in them is escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageText {
    pub title_nl: &'static str,
    pub title_en: &'static str,
    pub body_nl: String,
    pub body_en: String,
}

const STATUS_BAD_REQUEST: u16 = 400;
const STATUS_FORBIDDEN: u16 = 403;
const STATUS_INTERNAL_SERVER_ERROR: u16 = 500;
const STATUS_SERVICE_UNAVAILABLE: u16 = 503;

impl LoginFailure {
    pub fn code(&self) -> &'static str {
        match self {
            LoginFailure::TargetNotAllowed(_) => "target_not_allowed",
            LoginFailure::LoginStateMissing => "login_state_missing",
            LoginFailure::BrowserMismatch => "login_browser_mismatch",
            LoginFailure::Invalid(e) => e.code(),
            LoginFailure::Replay(_) => "assertion_replayed",
            LoginFailure::AuthnNotFresh => "authn_not_fresh",
            LoginFailure::Identity(e) => e.code(),
            LoginFailure::StoreUnavailable(_) => "store_unavailable",
            LoginFailure::StoreFull(_) => "store_full",
            LoginFailure::Metadata(MetadataUnavailable::NotYet(_) | MetadataUnavailable::Refused(..)) => {
                "metadata_unavailable"
            }
            LoginFailure::Metadata(MetadataUnavailable::Expired(..)) => "metadata_expired",
            LoginFailure::LinkStoreUnavailable(_) => "link_store_unavailable",
            LoginFailure::Redirect(e) => e.code(),
            LoginFailure::Logout(e) => e.code(),
            LoginFailure::LogoutStateMissing => "logout_state_missing",
            LoginFailure::LogoutReplayed => "logout_replayed",
            LoginFailure::LinkResponse(e) => e.code(),
            LoginFailure::LinkStateMissing => "link_state_missing",
            LoginFailure::LinkBrowserMismatch => "link_browser_mismatch",
            LoginFailure::LinkAffiliationMismatch { .. } => "link_affiliation_mismatch",
            LoginFailure::Busy(_) => "busy",
            LoginFailure::Oidc(e) => e.code(),
            LoginFailure::Internal(_) => "internal_error",
        }
    }

    /// The HTTP status of the failure's page (a number: this module knows no HTTP types).
    pub fn status(&self) -> u16 {
        match self {
            LoginFailure::Identity(_) | LoginFailure::LinkAffiliationMismatch { .. } => STATUS_FORBIDDEN,
            LoginFailure::StoreUnavailable(_)
            | LoginFailure::StoreFull(_)
            | LoginFailure::Metadata(_)
            | LoginFailure::Busy(_)
            | LoginFailure::LinkStoreUnavailable(_) => STATUS_SERVICE_UNAVAILABLE,
            LoginFailure::Internal(_) => STATUS_INTERNAL_SERVER_ERROR,
            _ => STATUS_BAD_REQUEST,
        }
    }

    /// When a client should come back (`Retry-After`): a full validation pool drains in
    /// milliseconds.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            LoginFailure::Busy(_) => Some(1),
            _ => None,
        }
    }

    /// What the student reads; `app_name` is the app's display name (escaped here).
    pub fn text(&self, app_name: &str) -> PageText {
        let app = escape(app_name);
        let restart_nl = format!("Ga terug naar je elo en klik opnieuw op de link naar {app}.");
        let restart_en = format!("Go back to your learning environment and click the link to {app} again.");
        match self {
            LoginFailure::TargetNotAllowed(_) => PageText {
                title_nl: "Ongeldige doorverwijzing",
                title_en: "Invalid redirect",
                body_nl: "De link wil je na het inloggen naar een adres sturen dat niet bij deze app hoort. Gebruik de link uit je elo.".into(),
                body_en: "The link wants to send you to an address that does not belong to this app after login. Please use the link from your learning environment.".into(),
            },
            LoginFailure::LoginStateMissing | LoginFailure::BrowserMismatch => PageText {
                title_nl: "Inloggen verlopen",
                title_en: "Login expired",
                body_nl: format!("Het inloggen duurde te lang, is al afgerond, of is in een andere browser begonnen. {restart_nl}"),
                body_en: format!("The login took too long, was already finished, or was started in another browser. {restart_en}"),
            },
            LoginFailure::Invalid(ValidationError::IdpStatus { code, message }) => PageText {
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
            LoginFailure::Invalid(ValidationError::Expired(_) | ValidationError::ConfirmationExpired(_) | ValidationError::NotYetValid(_)) => PageText {
                title_nl: "Inloggegevens verlopen",
                title_en: "Login data expired",
                body_nl: format!("De inloggegevens van Entree zijn verlopen of nog niet geldig. Staat de klok van je computer goed? {restart_nl}"),
                body_en: format!("The login data from Entree expired or is not valid yet. Is your computer's clock right? {restart_en}"),
            },
            // The one refusal that a config key can lift: the page names it for whoever the
            // user sends the reference to (the message in the log line names it too).
            LoginFailure::Invalid(ValidationError::CbcUnauthenticated(_)) => PageText {
                title_nl: "Inloggen geweigerd",
                title_en: "Login refused",
                body_nl: format!("De inloggegevens zijn versleuteld met AES-CBC in een bericht zonder handtekening en daarom geweigerd. {restart_nl} Voor de beheerder van {app}: de identity provider moet het hele bericht ondertekenen of AES-GCM gebruiken; wie het risico (padding oracle) aanvaardt, zet <code>allow_cbc = true</code> bij de federatie (<code>[federations.…]</code>)."),
                body_en: format!("The login data was encrypted with AES-CBC in a message without a signature, and was refused. {restart_en} For the {app} administrator: the identity provider must sign the whole Response or use AES-GCM; to accept the risk (a padding oracle), set <code>allow_cbc = true</code> on the federation (<code>[federations.…]</code>)."),
            },
            LoginFailure::AuthnNotFresh => PageText {
                title_nl: "Opnieuw inloggen gevraagd",
                title_en: "A fresh login was asked for",
                body_nl: format!("{app} vroeg om opnieuw in te loggen, maar Entree gebruikte een eerdere inlog. Je bent niet ingelogd. Sluit je browser en probeer het opnieuw vanuit je elo."),
                body_en: format!("{app} asked for a fresh login, but Entree used an earlier one. You have not been signed in. Close your browser and try again from your learning environment."),
            },
            LoginFailure::Invalid(_) | LoginFailure::Replay(_) => refused_text(app_name),
            LoginFailure::Identity(IdentityError::SchoolNotActivated { brin, contact }) => {
                let (contact_nl, contact_en) = match contact.as_deref().map(contact_link) {
                    Some(link) => (
                        format!("Stuur daarvoor het BRIN-nummer <code>{}</code> naar {link}.", escape(brin)),
                        format!("To do so, send the BRIN <code>{}</code> to {link}.", escape(brin)),
                    ),
                    None => (
                        format!("Noem daarbij het BRIN-nummer <code>{}</code>.", escape(brin)),
                        format!("Mention the BRIN <code>{}</code> when doing so.", escape(brin)),
                    ),
                };
                PageText {
                    title_nl: "Je school gebruikt deze app nog niet",
                    title_en: "Your school does not use this app yet",
                    body_nl: format!(
                        "Je school (BRIN <code>{}</code>) heeft {app} nog niet geactiveerd. De school moet de dienst aanzetten in Mijn Entree Federatie en de activatie doorgeven aan {app}. {contact_nl} Vraag je docent of ict-coördinator.",
                        escape(brin)
                    ),
                    body_en: format!(
                        "Your school (BRIN <code>{}</code>) has not activated {app} yet. The school must switch the service on in Mijn Entree Federatie and tell {app}. {contact_en} Please ask your teacher or ICT coordinator.",
                        escape(brin)
                    ),
                }
            }
            LoginFailure::Identity(IdentityError::SchoolMissing) => PageText {
                title_nl: "School onbekend",
                title_en: "School unknown",
                body_nl: format!("Entree heeft niet doorgegeven bij welke school je hoort, dus {app} kan je niet toelaten. Vraag je ict-coördinator om de attributen in Entree te controleren."),
                body_en: format!("Entree did not tell which school you belong to, so {app} cannot let you in. Ask your ICT coordinator to check the attributes in Entree."),
            },
            LoginFailure::Identity(IdentityError::ValueNotClean { .. }) => PageText {
                title_nl: "Gegevens onbruikbaar",
                title_en: "Account details unusable",
                body_nl: format!("Entree gaf gegevens over je door (je nummer of school) die {app} niet veilig kan gebruiken, dus je bent niet ingelogd. Er is niets opgeslagen. Vraag je ict-coördinator om je gegevens in Entree te laten controleren en noem de referentie hieronder."),
                body_en: format!("Entree sent details about you (your number or school) that {app} cannot use safely, so you have not been signed in. Nothing was stored. Ask your ICT coordinator to have your details in Entree checked, and mention the reference below."),
            },
            LoginFailure::Identity(_) => PageText {
                title_nl: "Nog geen account",
                title_en: "No account yet",
                body_nl: format!("Er is in {app} nog geen account dat bij jouw schoolaccount hoort. Vraag je docent of de beheerder van {app} op school om je account aan te maken of te koppelen."),
                body_en: format!("There is no account in {app} that belongs to your school account yet. Ask your teacher or the {app} administrator at your school to create or link your account."),
            },
            LoginFailure::Redirect(_) | LoginFailure::Logout(_) | LoginFailure::LogoutStateMissing | LoginFailure::LogoutReplayed => PageText {
                title_nl: "Uitloggen niet bevestigd",
                title_en: "Logout not confirmed",
                body_nl: format!("Het uitlogbericht kon niet worden gecontroleerd en is genegeerd. Je sessie bij {app} is wel beëindigd als je zelf uitlogde. Sluit bij twijfel je browser."),
                body_en: format!("The logout message could not be verified and was ignored. Your session with {app} did end if you logged out yourself. If in doubt, close your browser."),
            },
            LoginFailure::LinkResponse(_) | LoginFailure::LinkStateMissing | LoginFailure::LinkBrowserMismatch => PageText {
                title_nl: "Koppelen niet gelukt",
                title_en: "Linking did not work",
                body_nl: format!("Het koppelen van je account aan {app} kon niet worden afgerond: het duurde te lang, is al gebruikt, of is in een andere browser begonnen. Er is niets opgeslagen. {restart_nl}"),
                body_en: format!("Linking your account to {app} could not be finished: it took too long, was already used, or was started in another browser. Nothing was stored. {restart_en}"),
            },
            LoginFailure::LinkAffiliationMismatch { .. } => PageText {
                title_nl: "Dit account kan niet aan jouw schoolaccount gekoppeld worden",
                title_en: "This account cannot be linked to your school account",
                body_nl: format!("Het account van {app} waarmee je inlogde hoort al bij iemand met een andere rol op school (een leerling of een medewerker). Er is niets gekoppeld. Log in met je eigen account van {app}, of vraag de beheerder van {app} op school om hulp en geef de referentie hieronder door."),
                body_en: format!("The {app} account you signed in with already belongs to someone with another role at school (a student or a staff member). Nothing was linked. Sign in with your own {app} account, or ask the {app} administrator at your school for help and give them the reference below."),
            },
            LoginFailure::Busy(_) => PageText {
                title_nl: "Even geduld",
                title_en: "Please wait a moment",
                body_nl: format!("Er loggen nu heel veel mensen tegelijk in bij {app}. Probeer het over een paar seconden opnieuw: ga terug en vernieuw de pagina, of klik opnieuw op de link in je elo."),
                body_en: format!("A great many people are signing in to {app} at this moment. Please try again in a few seconds: go back and reload the page, or click the link in your learning environment again."),
            },
            LoginFailure::Metadata(_) => PageText {
                title_nl: "Inloggen via Entree kan nu niet",
                title_en: "Signing in through Entree is not possible right now",
                body_nl: format!("{app} kan de gegevens van Entree op dit moment niet controleren, dus inloggen is veilig uitgeschakeld. De beheerder is gewaarschuwd. Probeer het later opnieuw."),
                body_en: format!("{app} cannot check Entree's details at the moment, so signing in has been switched off to keep you safe. The administrators have been alerted. Please try again later."),
            },
            LoginFailure::Oidc(super::oidc::OidcRefusal::IdTokenHintInvalid(_) | super::oidc::OidcRefusal::PostLogoutRedirectUriNotRegistered(_)) => PageText {
                title_nl: "Uitloggen niet gelukt",
                title_en: "Logout did not work",
                body_nl: format!("De app vroeg de bridge om je uit te loggen, maar het verzoek klopte niet, dus er is niets gedaan. Sluit je browser om zeker te zijn dat je bij {app} bent uitgelogd, en geef de referentie hieronder door aan de helpdesk van {app}."),
                body_en: format!("The app asked the bridge to log you out, but the request was not valid, so nothing was done. Close your browser to be sure you are logged out of {app}, and give the reference below to the {app} help desk."),
            },
            LoginFailure::Oidc(_) => PageText {
                title_nl: "Inloggen bij deze app is verkeerd ingesteld",
                title_en: "Signing in to this app is misconfigured",
                body_nl: "De app stuurde je naar de bridge met een verzoek dat de bridge niet kent (een onbekende app of een niet-geregistreerd terugkeeradres). Je bent niet ingelogd en nergens heen gestuurd. Geef de referentie hieronder door aan de helpdesk van de app.".into(),
                body_en: "The app sent you to the bridge with a request the bridge does not know (an unknown app or a return address that is not registered). You have not been signed in or sent anywhere. Please give the reference below to the app's help desk.".into(),
            },
            LoginFailure::StoreUnavailable(_)
            | LoginFailure::StoreFull(_)
            | LoginFailure::LinkStoreUnavailable(_)
            | LoginFailure::Internal(_) => temporary_problem_text(app_name),
        }
    }
}

/// `activation_contact` as a link: an email address as mailto, a URL as itself (the config
/// accepts only these two).
pub fn contact_link(contact: &str) -> String {
    let href = if contact.contains('@') && !contact.contains("://") {
        format!("mailto:{contact}")
    } else {
        contact.to_string()
    };
    format!("<a href=\"{}\">{}</a>", escape(&href), escape(contact))
}

/// The page of a login whose data could not be verified (also the http layer's malformed
/// ACS requests).
pub fn refused_text(app_name: &str) -> PageText {
    let app = escape(app_name);
    PageText {
        title_nl: "Inloggen geweigerd",
        title_en: "Login refused",
        body_nl: format!("De inloggegevens konden niet worden gecontroleerd en zijn geweigerd. Ga terug naar je elo en klik opnieuw op de link naar {app}. Blijft dit gebeuren, neem dan contact op met de helpdesk van {app}."),
        body_en: format!("The login data could not be verified and was refused. Go back to your learning environment and click the link to {app} again. If this keeps happening, contact the {app} help desk."),
    }
}

/// The page of a failure on the bridge's side (a store, a signing key; also the http
/// layer's upstream and store failures).
pub fn temporary_problem_text(app_name: &str) -> PageText {
    let app = escape(app_name);
    PageText {
        title_nl: "Tijdelijke storing",
        title_en: "Temporary problem",
        body_nl: format!(
            "Inloggen lukt nu even niet door een storing bij {app}. Probeer het over een paar minuten opnieuw."
        ),
        body_en: format!(
            "Signing in does not work right now because of a problem at {app}. Please try again in a few minutes."
        ),
    }
}
