//! The end of a login at the ACS, in the order that keeps it safe: the pending login of THIS
//! browser (the one rule of [`binding`](super::binding)), the response validated against it,
//! the school and the person's values checked, the assertion ID recorded (before anything
//! else is written, so a replay changes nothing), and then the person code by the resolution
//! order of [`identity::resolve`](crate::identity::resolve), or first-time linking.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::binding::{take_for_browser, BrowserCookies};
use super::{link, target, Answer, CookieChange, Diagnosis, LoginFailure, Services};
use crate::config::App;
use crate::cpu_pool::RunError;
use crate::handoff::oidc::authorize::Authorization;
use crate::identity::resolve::{resolve, Resolution};
use crate::identity::{self, Identity};
use crate::saml::idp_metadata::IdpDescriptor;
use crate::saml::response::{self, Expectations, Report, ValidatedAssertion};
use crate::saml::xml::XmlLimits;
use crate::saml::ValidationError;
use crate::store::{PendingLogin, Subject};

/// A RelayState longer than this is no key of a pending login (the bridge makes 22
/// characters); in an unsolicited login it may be the target URL.
pub const MAX_RELAY_STATE_KEY_LEN: usize = 64;

/// What the IdP's browser POSTed to the ACS (HTTP-POST binding), each field once.
#[derive(Debug, Clone)]
pub struct AcsPost {
    /// `SAMLResponse`, base64 as posted.
    pub saml_response: String,
    /// `RelayState`: the pending login's key, or (unsolicited) a target.
    pub relay_state: Option<String>,
}

/// Who logged in, for the hand-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    pub identity: Identity,
    /// Where the student goes afterwards (checked against the app's origins).
    pub target: Option<String>,
    /// The IdP's subject, kept with a headers-mode session for Single Logout.
    pub subject: Subject,
    /// oidc mode: the authorization request the login answers, when it started at one.
    pub oidc: Option<Authorization>,
    /// When the IdP authenticated the person (its AuthnInstant, never later than now): the
    /// session's start for `auth_time` and `max_age`.
    pub authenticated_at: SystemTime,
}

/// What an accepted response leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The person code is known: hand the identity to the app.
    LoggedIn(Box<LoggedIn>),
    /// First-time linking started: the browser goes to the app's link page (`location`, with
    /// a signed `link_request`); the answer sets the link cookie.
    Link { location: String },
}

/// The ACS: `post` validated for `app` and this browser (`cookies`: its login cookies of the
/// posted RelayState). Every answer to a RelayState clears that login cookie: it has served
/// or can no longer serve.
pub async fn complete(
    services: Services<'_>,
    app: &Arc<App>,
    post: AcsPost,
    cookies: &BrowserCookies,
) -> Answer<Outcome> {
    let relay_key = post
        .relay_state
        .clone()
        .filter(|rs| rs.len() <= MAX_RELAY_STATE_KEY_LEN);
    let mut changes = Vec::new();
    let mut diagnosis = Diagnosis::default();
    let result = match accept(services, app, post, relay_key.as_deref(), cookies, &mut diagnosis).await {
        Ok((outcome, cookie)) => {
            changes.extend(cookie);
            Ok(outcome)
        }
        Err(e) => Err(e),
    };
    if let Some(relay_state) = relay_key {
        changes.push(CookieChange::ClearLogin { relay_state });
    }
    let mut answer = Answer::new(result, changes);
    if answer.result.is_err() {
        // The report names the person by pseudonym only; the id itself stays here.
        diagnosis.person = diagnosis.federated_id.take().map(|id| services.pseudonyms.of(&id));
        answer.diagnosis = diagnosis;
    }
    answer
}

async fn accept(
    services: Services<'_>,
    app: &Arc<App>,
    post: AcsPost,
    relay_key: Option<&str>,
    cookies: &BrowserCookies,
    diagnosis: &mut Diagnosis,
) -> Result<(Outcome, Option<CookieChange>), LoginFailure> {
    // The pending login this browser started, looked up by RelayState and bound by cookie.
    let pending = match relay_key {
        Some(rs) => take_for_browser::<PendingLogin>(services.store, &app.name, rs, cookies).await,
        None => Ok(None),
    };
    let pending = match pending {
        Ok(p) => p,
        Err(e) => {
            diagnosis.check("pending_login", false, e.to_string());
            return Err(e);
        }
    };
    match &pending {
        Some(_) => diagnosis.check("pending_login", true, "started in this browser"),
        None if app.sp.allow_unsolicited => diagnosis.check(
            "pending_login",
            true,
            "none: an unsolicited login, which this app allows",
        ),
        None => {
            diagnosis.check(
                "pending_login",
                false,
                "no pending login for this RelayState in this browser (expired, already used, or never started)",
            );
            return Err(LoginFailure::LoginStateMissing);
        }
    }

    // Decoding and validation are the CPU-heavy part: on the validation threads, so that a
    // flood of (hostile) responses waits there, not on the workers every other request needs.
    let idp = services.metadata.idp(&app.federation.name)?;
    let request_id = pending.as_ref().map(|p| p.request_id.clone());
    let validating = app.clone();
    let saml_response = post.saml_response;
    let (validated, checks) = services
        .validation
        .run(move || validate(&validating, &idp, &saml_response, request_id.as_deref()))
        .await
        .map_err(|e| match e {
            RunError::Busy(busy) => LoginFailure::Busy(busy),
            RunError::Lost(lost) => LoginFailure::Internal(lost.to_string()),
        })?;
    diagnosis
        .checks
        .extend(checks.into_iter().map(|c| crate::store::reports::ReportCheck {
            check: c.check.to_string(),
            ok: c.ok,
            detail: c.detail,
        }));
    let assertion = validated?;
    let (school, branch) = identity::school_of(&assertion);
    diagnosis.school = branch.or(school);
    // The pseudonym is made only if the login then fails (see `complete`).
    diagnosis.federated_id = assertion
        .attributes()
        .first(&app.identity.person_attribute)
        .map(|id| id.trim().to_string());

    // A forced login (prompt=login, max_age) must be one the IdP made after it was asked: an
    // IdP that answers from an older session of its own has not authenticated anyone anew.
    if let Some(p) = pending.as_ref().filter(|p| p.force_authn) {
        let asked = p
            .expires_at
            .checked_sub(super::PENDING_LOGIN_LIFETIME)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let skew = app.federation.trust.clock_skew;
        let instant = assertion.authn_instant().map(system_time);
        if instant.is_none_or(|t| t + skew < asked) {
            diagnosis.check(
                "authn_fresh",
                false,
                "ForceAuthn was asked and AuthnInstant is older than the request",
            );
            return Err(LoginFailure::AuthnNotFresh);
        }
        diagnosis.check("authn_fresh", true, "AuthnInstant after the forced login's request");
    }

    // School activation and the person's facts: a refused school leaves nothing behind.
    let activations = services.activations.snapshot();
    let activated = activations.of(&app.name);
    let facts = match identity::facts(&app.identity, activated, &assertion) {
        Ok(facts) => {
            diagnosis.check(
                "school_activated",
                true,
                school_check_detail(app, activated, &assertion),
            );
            diagnosis.check(
                "person_values",
                true,
                format!("{} present and clean", app.identity.person_attribute),
            );
            facts
        }
        Err(e) => {
            let check = match e {
                identity::IdentityError::SchoolNotActivated { .. } | identity::IdentityError::SchoolMissing => {
                    "school_activated"
                }
                _ => "person_values",
            };
            diagnosis.check(check, false, format!("{}: {e}", e.code()));
            return Err(e.into());
        }
    };

    // The assertion ID is recorded before anything else is written (last_login_at, a
    // pending link), so a replay changes nothing.
    if let Err(e) = record_once(services, &assertion).await {
        diagnosis.check("not_replayed", false, e.to_string());
        return Err(e);
    }
    diagnosis.check("not_replayed", true, "assertion ID recorded");
    let stored_link = match services
        .links
        .person_code_for_login(&app.name, &facts.federated_id)
        .await
    {
        Ok(link) => link,
        Err(e) => {
            diagnosis.check("person_code", false, e.to_string());
            return Err(LoginFailure::LinkStoreUnavailable(e.to_string()));
        }
    };
    let resolution = resolve(&app.identity, &facts, stored_link);
    match &resolution {
        Resolution::Refused(e) => diagnosis.check("person_code", false, format!("{}: {e}", e.code())),
        Resolution::StartLinking => diagnosis.check(
            "person_code",
            true,
            "no stored link and no rule: first-time linking starts",
        ),
        _ => {}
    }

    // Unsolicited logins may carry a target in RelayState; it passes the same origin check.
    let oidc = pending.as_ref().and_then(|p| p.oidc.clone());
    let now = SystemTime::now();
    let authenticated_at = assertion
        .authn_instant()
        .map(system_time)
        .filter(|t| *t <= now)
        .unwrap_or(now);
    let target = match pending {
        Some(p) => p.target,
        None => post
            .relay_state
            .as_deref()
            .and_then(|rs| target::check_absolute(app, rs)),
    };
    let subject = subject_of(&assertion);
    match resolution {
        Resolution::StoredLink(person_code) | Resolution::Rule(person_code) => {
            tracing::info!(
                target: "audit",
                event = "login",
                app = app.name,
                school = facts.school.as_deref().unwrap_or("-"),
                person = services.pseudonyms.of(&person_code),
                encrypted = assertion.encrypted(),
                "login accepted"
            );
            let identity = Identity { person_code, facts };
            Ok((
                Outcome::LoggedIn(Box::new(LoggedIn {
                    identity,
                    target,
                    subject,
                    oidc,
                    authenticated_at,
                })),
                None,
            ))
        }
        Resolution::StartLinking => {
            let (location, cookie) =
                link::start_linking(services, app, facts, target, subject, oidc, authenticated_at).await?;
            Ok((Outcome::Link { location }, Some(cookie)))
        }
        Resolution::Refused(e) => Err(e.into()),
        Resolution::Unconfigured => Err(LoginFailure::Internal("no rule and no linking for this app".into())),
    }
}

/// Records the assertion in the replay cache for as long as it could be replayed; a second
/// use is refused.
async fn record_once(services: Services<'_>, assertion: &ValidatedAssertion) -> Result<(), LoginFailure> {
    let replay_key = format!("{}|{}", assertion.issuer(), assertion.assertion_id());
    let until = SystemTime::UNIX_EPOCH + Duration::from_secs(assertion.replay_until().timestamp().max(0) as u64);
    let fresh = services
        .store
        .remember_assertion(&replay_key, until)
        .await
        .map_err(|e| LoginFailure::StoreUnavailable(e.to_string()))?;
    if fresh {
        Ok(())
    } else {
        Err(LoginFailure::Replay(assertion.assertion_id().to_string()))
    }
}

fn system_time(t: chrono::DateTime<chrono::Utc>) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(t.timestamp().max(0) as u64)
}

/// Who the IdP says logged in, kept for Single Logout.
fn subject_of(assertion: &ValidatedAssertion) -> Subject {
    Subject {
        name_id: assertion.name_id().to_string(),
        name_id_format: assertion.name_id_format().map(str::to_string),
        session_index: assertion.session_index().map(str::to_string),
    }
}

/// How the school of an accepted assertion is activated, in words (for reports and
/// `verify-response`).
pub fn school_check_detail(
    app: &App,
    activated: &std::collections::BTreeSet<String>,
    assertion: &ValidatedAssertion,
) -> String {
    let (school, branch) = identity::school_of(assertion);
    let brin = branch.as_deref().or(school.as_deref()).unwrap_or("-");
    match identity::school_activation(&app.identity, activated, school.as_deref(), branch.as_deref()) {
        Ok(identity::ActivatedBy::Everyone) => format!("{brin}: apps.{}.schools admits every school", app.name),
        Ok(identity::ActivatedBy::Config) => format!("{brin}: listed in apps.{}.schools", app.name),
        Ok(identity::ActivatedBy::Database) => format!("{brin}: activated in the database"),
        Err(e) => format!("{}: {e}", e.code()),
    }
}

/// The HTTP-POST binding's value, decoded and validated against this app and its IdP, with
/// the checks it made (for the failure report of a refusal).
fn validate(
    app: &App,
    idp: &IdpDescriptor,
    saml_response: &str,
    request_id: Option<&str>,
) -> (
    Result<ValidatedAssertion, ValidationError>,
    Vec<crate::saml::response::CheckRecord>,
) {
    let mut report = Report::recording();
    let result = validate_into(app, idp, saml_response, request_id, &mut report);
    (result, report.checks)
}

fn validate_into(
    app: &App,
    idp: &IdpDescriptor,
    saml_response: &str,
    request_id: Option<&str>,
    report: &mut Report,
) -> Result<ValidatedAssertion, ValidationError> {
    let limits = XmlLimits::default();
    let xml = report.decoded(response::decode_post_binding(saml_response, limits))?;
    let federation = &app.federation;
    let expectations = Expectations {
        idp_entity_id: &idp.entity_id,
        idp_keys: &idp.signing_keys,
        sp_entity_id: &app.sp.entity_id,
        acs_url: &app.sp.acs_url,
        request_id,
        in_response_to_unchecked: false,
        allow_unsolicited: app.sp.allow_unsolicited,
        allow_sha1: federation.trust.allow_sha1,
        allow_cbc: federation.trust.allow_cbc,
        clock_skew: federation.trust.clock_skew,
        now: chrono::Utc::now(),
        decryption_keys: &app.sp.decryption_keys,
        limits,
    };
    response::validate(&xml, &expectations, report)
}
