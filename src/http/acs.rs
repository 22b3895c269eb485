//! The ACS: the pending login, response validation, identity resolution (stored link, rule,
//! first-time linking), the replay cache, and the hand-off or the redirect to link.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::cookies;
use super::errors::LoginError;
use super::pages::Lang;
use super::target;
use super::AppState;
use crate::config::App;
use crate::cpu_pool::RunError;
use crate::identity::{self, linking, Facts, Identity};
use crate::saml::idp_metadata::IdpDescriptor;
use crate::saml::response::{self, Expectations, Report, ValidatedAssertion};
use crate::saml::xml::XmlLimits;
use crate::saml::ValidationError;
use crate::store::{PendingLink, Subject};

/// What an accepted response leads to.
enum Next {
    HandOff(Box<Identity>, Option<String>, Subject),
    Link { location: String, cookie: String },
}

/// Marks an ACS response that sent the student to the app's link page (for the metrics).
#[derive(Debug, Clone, Copy)]
pub struct LinkingStarted;

pub async fn acs(state: &AppState, app: &Arc<App>, headers: &HeaderMap, body: Bytes, lang: Lang) -> Response {
    let mut clear_cookie = None;
    let result = accept(state, app, headers, &body, &mut clear_cookie).await;
    let mut response = match result {
        Ok(Next::HandOff(identity, target, subject)) => {
            hand_off(state, app, headers, *identity, target, subject, lang).await
        }
        Ok(Next::Link { location, cookie }) => {
            let mut r = (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
            r.extensions_mut().insert(LinkingStarted);
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => e.into_response(),
    };
    if let Some(cookie) = clear_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Hands the identity to the app: in jwt mode the POST page, in headers mode a fresh
/// session and a redirect to the target.
pub async fn hand_off(
    state: &AppState,
    app: &App,
    headers: &HeaderMap,
    identity: Identity,
    target: Option<String>,
    subject: Subject,
    lang: Lang,
) -> Response {
    if app.handoff.mode == crate::handoff::HandoffMode::Headers {
        return match super::session::start(state, app, headers, identity, subject).await {
            Ok(cookie) => {
                let location = target.unwrap_or_else(|| app.base_url.to_string());
                let mut r = (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    r.headers_mut().append(header::SET_COOKIE, v);
                }
                r
            }
            Err(e) => LoginError::StoreUnavailable(e.to_string()).into_response(),
        };
    }
    jwt_page(state, app, &identity, target.as_deref(), lang)
}

/// The JWT hand-off page for a resolved identity.
fn jwt_page(state: &AppState, app: &App, identity: &Identity, target: Option<&str>, lang: Lang) -> Response {
    let now = chrono::Utc::now().timestamp();
    let claims = crate::handoff::claims::build(
        &app.name,
        app.handoff.token_lifetime,
        state.settings.public_base_url.as_str(),
        identity,
        now,
    );
    let token = match state.settings.jwt_keys.sign(&claims) {
        Ok(t) => t,
        Err(e) => return LoginError::Internal(format!("signing the JWT: {e}")).into_response(),
    };
    let callback = app
        .handoff
        .callback_url
        .as_ref()
        .map(|u| u.to_string())
        .unwrap_or_default();
    let origin = app
        .handoff
        .callback_url
        .as_ref()
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let form = crate::handoff::form::jwt_post(&callback, &token, target);
    super::pages::handoff_page(lang, &app.display_name, &form, &origin)
}

async fn accept(
    state: &AppState,
    app: &Arc<App>,
    headers: &HeaderMap,
    body: &[u8],
    clear_cookie: &mut Option<String>,
) -> Result<Next, LoginError> {
    let mut saml_response = None;
    let mut relay_state = None;
    for (k, v) in url::form_urlencoded::parse(body) {
        match k.as_ref() {
            "SAMLResponse" if saml_response.is_none() => saml_response = Some(v.into_owned()),
            "RelayState" if relay_state.is_none() => relay_state = Some(v.into_owned()),
            "SAMLResponse" | "RelayState" => return Err(LoginError::BadRequest("a form field appears twice")),
            _ => {}
        }
    }
    let saml_response = saml_response.ok_or(LoginError::BadRequest("no SAMLResponse field"))?;

    // The pending login this browser started, looked up by RelayState and bound by cookie.
    let mut pending = None;
    if let Some(rs) = relay_state.as_deref().filter(|rs| rs.len() <= 64) {
        *clear_cookie = Some(cookies::clear_login_cookie(app, rs));
        let found = state
            .store
            .take_pending(rs)
            .await
            .map_err(|e| LoginError::StoreUnavailable(e.to_string()))?;
        if let Some(p) = found {
            // Any of the login cookies of this name may be the browser's own (as for links):
            // a tossed one sent first must not make the real one fail.
            let name = cookies::login_cookie_name(app, rs);
            let this_browser = cookies::get_all(headers, &name)
                .take(crate::http::session::MAX_PRESENTED)
                .any(|c| cookies::same_secret(c, &p.browser_nonce));
            if p.app != app.name || !this_browser {
                return Err(LoginError::BrowserMismatch);
            }
            pending = Some(p);
        }
    }
    if pending.is_none() && !app.sp.allow_unsolicited {
        return Err(LoginError::LoginStateMissing);
    }

    // Decoding and validation are the CPU-heavy part: on the validation threads, so that a
    // flood of (hostile) responses waits there, not on the workers every other request needs.
    let idp = state.metadata.idp(&app.federation.name)?;
    let request_id = pending.as_ref().map(|p| p.request_id.clone());
    let validating = app.clone();
    let assertion = state
        .validation
        .run(move || validate(&validating, &idp, &saml_response, request_id.as_deref()))
        .await
        .map_err(|e| match e {
            RunError::Busy(busy) => LoginError::Busy(busy),
            RunError::Lost(lost) => LoginError::Internal(lost.to_string()),
        })??;

    // School activation and the person's facts: a refused school leaves nothing behind.
    let facts = identity::facts(&app.identity, &assertion)?;

    // The assertion ID is recorded before anything else is written (last_login_at, a
    // pending link), so a replay changes nothing.
    let replay_key = format!("{}|{}", assertion.issuer(), assertion.assertion_id());
    let until = SystemTime::UNIX_EPOCH + Duration::from_secs(assertion.replay_until().timestamp().max(0) as u64);
    let fresh = state
        .store
        .remember_assertion(&replay_key, until)
        .await
        .map_err(|e| LoginError::StoreUnavailable(e.to_string()))?;
    if !fresh {
        return Err(LoginError::Replay(assertion.assertion_id().to_string()));
    }
    let person_code = resolve_person_code(state, app, &facts).await?;

    // Unsolicited logins may carry a target in RelayState; it passes the same origin check.
    let target = match pending {
        Some(p) => p.target,
        None => relay_state.as_deref().and_then(|rs| target::check_absolute(app, rs)),
    };
    let subject = Subject {
        name_id: assertion.name_id().to_string(),
        name_id_format: assertion.name_id_format().map(str::to_string),
        session_index: assertion.session_index().map(str::to_string),
    };
    match person_code {
        Some(code) => {
            tracing::info!(
                target: "audit",
                event = "login",
                app = app.name,
                school = facts.school.as_deref().unwrap_or("-"),
                person = state.settings.pseudonyms.of(&code),
                encrypted = assertion.encrypted(),
                "login accepted"
            );
            Ok(Next::HandOff(
                Box::new(Identity {
                    person_code: code,
                    facts,
                }),
                target,
                subject,
            ))
        }
        None => start_linking(state, app, facts, target, subject).await,
    }
}

/// The HTTP-POST binding's value, decoded and validated against this app and its IdP.
fn validate(
    app: &App,
    idp: &IdpDescriptor,
    saml_response: &str,
    request_id: Option<&str>,
) -> Result<ValidatedAssertion, ValidationError> {
    let limits = XmlLimits::default();
    let xml = response::decode_post_binding(saml_response, limits)?;
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
    response::validate(&xml, &expectations, &mut Report::disabled())
}

/// (1) a stored link, (2) the rule, or `None` when (3) first-time linking must run.
async fn resolve_person_code(state: &AppState, app: &App, facts: &Facts) -> Result<Option<String>, LoginError> {
    let stored = state
        .links
        .person_code_for_login(&app.name, &facts.federated_id)
        .await
        .map_err(|e| LoginError::LinkStoreUnavailable(e.to_string()))?;
    if stored.is_some() {
        return Ok(stored);
    }
    match identity::rule(&app.identity, facts) {
        Some(Ok(code)) => Ok(Some(code)),
        Some(Err(_)) | None if app.identity.linking.is_some() => Ok(None),
        Some(Err(e)) => Err(e.into()),
        None => Err(LoginError::Internal("no rule and no linking for this app".into())),
    }
}

/// Sends the student to the app's link page with a signed `link_request`.
async fn start_linking(
    state: &AppState,
    app: &App,
    facts: Facts,
    target: Option<String>,
    subject: Subject,
) -> Result<Next, LoginError> {
    let linking = app
        .identity
        .linking
        .as_ref()
        .ok_or_else(|| LoginError::Internal("linking is not configured".into()))?;
    let jti = crate::keys::random_token();
    let nonce = crate::keys::random_token();
    let now = chrono::Utc::now().timestamp();
    let claims = linking::request_claims(
        state.settings.public_base_url.as_str(),
        &app.name,
        &jti,
        facts.school.as_deref(),
        facts.given_name.as_deref(),
        &app.route_url("link/complete"),
        now,
    );
    let token = state
        .settings
        .jwt_keys
        .sign_typed(&claims, linking::LINK_REQUEST_TYP)
        .map_err(|e| LoginError::Internal(format!("signing the link request: {e}")))?;
    let federated = state.settings.pseudonyms.of(&facts.federated_id);
    let pending = PendingLink {
        app: app.name.clone(),
        facts,
        target,
        subject,
        browser_nonce: nonce.clone(),
        expires_at: SystemTime::now() + Duration::from_secs(linking::LINK_LIFETIME_SECS as u64),
    };
    state
        .store
        .put_pending_link(&jti, pending)
        .await
        .map_err(|e| LoginError::StoreUnavailable(e.to_string()))?;
    let mut location = linking.url.clone();
    location.query_pairs_mut().append_pair("link_request", &token);
    tracing::info!(app = app.name, federated, "first-time linking started");
    Ok(Next::Link {
        location: location.to_string(),
        cookie: cookies::set_link_cookie(app, &jti, &nonce),
    })
}
