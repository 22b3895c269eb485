//! Logout and Single Logout. [`logout`] ends this app's bridge sessions in the browser and,
//! when the IdP has a SingleLogoutService, makes a signed LogoutRequest for it (Redirect
//! binding). [`single_logout`] takes what the IdP sends to the SLS: its LogoutResponse
//! (signature checked, and it must answer our request) or its own LogoutRequest (signature
//! checked; every session of that subject in this app ends; the answer is a signed
//! LogoutResponse).

use std::time::{Duration, SystemTime};

use super::{Answer, CookieChange, LoginFailure, Services};
use crate::config::App;
use crate::saml::logout;
use crate::saml::redirect::{self, Kind};
use crate::store::{PendingLogin, Subject};

/// How long a sent LogoutRequest waits for its answer.
const LOGOUT_WAIT: Duration = Duration::from_secs(600);

/// Where the browser goes after a logout step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterLogout {
    /// To the IdP with a signed message: our LogoutRequest, or our LogoutResponse to its.
    ToIdp(String),
    /// Logged out here: to `target` (`post_logout_url`), or the logged-out page when `None`.
    Finished { target: Option<String> },
}

/// SP-initiated logout: every session id the browser presents (`presented`) ends, then
/// Single Logout for the `current` session's subject when the IdP has a SingleLogoutService.
/// Once the sessions have ended, the answer clears the session cookie, whether Single Logout
/// can then start or not; a store failure before that leaves it.
pub async fn logout(
    services: Services<'_>,
    app: &App,
    current: Option<Subject>,
    presented: &[&str],
) -> Answer<AfterLogout> {
    // Every session id the browser presents ends: of several, one may be a planted one.
    for id in presented {
        if let Err(e) = services.store.remove_session(id).await {
            return Answer::new(Err(LoginFailure::StoreUnavailable(e.to_string())), Vec::new());
        }
    }
    // Without usable IdP metadata the local logout still happens; only Single Logout is skipped.
    let slo_redirect = services
        .metadata
        .idp(&app.federation.name)
        .ok()
        .and_then(|idp| idp.slo_redirect.clone());
    let next = match (current, &slo_redirect) {
        (Some(subject), Some(slo)) => start_single_logout(services, app, &subject, &slo.location)
            .await
            .map(AfterLogout::ToIdp),
        _ => Ok(AfterLogout::Finished {
            target: app.post_logout_url.as_ref().map(|u| u.to_string()),
        }),
    };
    tracing::info!(app = app.name, "logged out");
    Answer::new(next, vec![CookieChange::ClearSession])
}

/// The signed LogoutRequest's URL; its answer is awaited under a fresh RelayState.
async fn start_single_logout(
    services: Services<'_>,
    app: &App,
    subject: &Subject,
    slo_url: &str,
) -> Result<String, LoginFailure> {
    let request_id = crate::keys::random_saml_id();
    let relay_state = crate::keys::random_token();
    let xml = logout::request_xml(
        &request_id,
        slo_url,
        &app.sp.entity_id,
        &subject.name_id,
        subject.name_id_format.as_deref(),
        subject.session_index.as_deref(),
    );
    let url = redirect::build_url(slo_url, Kind::Request, &xml, &relay_state, Some(&app.sp.key))
        .map_err(|e| LoginFailure::Internal(format!("signing the LogoutRequest: {e}")))?;
    let pending = PendingLogin {
        request_id,
        app: app.name.clone(),
        target: app.post_logout_url.as_ref().map(|u| u.to_string()),
        // Random, never empty: this entry shares the store with pending logins.
        browser_nonce: crate::keys::random_token(),
        expires_at: SystemTime::now() + LOGOUT_WAIT,
    };
    services.store.put_pending(&relay_state, pending).await?;
    Ok(url)
}

/// The SLS: `raw_query` is the Redirect binding's query as sent (its signature covers it).
pub async fn single_logout(services: Services<'_>, app: &App, raw_query: &str) -> Result<AfterLogout, LoginFailure> {
    let idp = services.metadata.idp(&app.federation.name)?;
    let received = redirect::receive(raw_query, &idp.signing_certs, app.federation.trust.allow_sha1)?;
    let sls_url = app.route_url("sls");
    match received.kind {
        Kind::Response => {
            let answer = logout::read_response(&received.xml, &idp.entity_id, &sls_url)?;
            let pending = match received.relay_state.as_deref() {
                Some(rs) => services
                    .store
                    .take_pending(rs)
                    .await
                    .map_err(|e| LoginFailure::StoreUnavailable(e.to_string()))?,
                None => None,
            };
            // Not a browser binding: the answer is bound to our request by its ID.
            let pending = pending
                .filter(|p| p.app == app.name && p.request_id == answer.in_response_to)
                .ok_or(LoginFailure::LogoutStateMissing)?;
            tracing::info!(
                app = app.name,
                success = answer.success,
                "single logout answered by the IdP"
            );
            Ok(AfterLogout::Finished { target: pending.target })
        }
        Kind::Request => {
            let skew = chrono::Duration::from_std(app.federation.trust.clock_skew).unwrap_or_default();
            let request = logout::read_request(&received.xml, &idp.entity_id, &sls_url, chrono::Utc::now(), skew)?;
            // The sessions end first, and only then is the request recorded as used: if the
            // store fails halfway, the IdP's retry must still be able to end the rest. A replay
            // can thus end the subject's sessions once more before it is refused: logging out
            // too much, never too little.
            let ended = services
                .store
                .remove_sessions_of(&app.name, &request.name_id)
                .await
                .map_err(|e| LoginFailure::StoreUnavailable(e.to_string()))?;
            let until = SystemTime::now() + (logout::MAX_REQUEST_AGE + skew * 2).to_std().unwrap_or(LOGOUT_WAIT);
            let fresh = services
                .store
                .remember_assertion(&format!("slo|{}|{}", idp.entity_id, request.id), until)
                .await
                .map_err(|e| LoginFailure::StoreUnavailable(e.to_string()))?;
            if !fresh {
                return Err(LoginFailure::LogoutReplayed);
            }
            tracing::info!(
                app = app.name,
                ended,
                person = services.pseudonyms.of(&request.name_id),
                "IdP-initiated logout"
            );
            let Some(slo) = &idp.slo_redirect else {
                return Ok(AfterLogout::Finished { target: None });
            };
            let xml = logout::response_xml(
                &crate::keys::random_saml_id(),
                &slo.response_location,
                &app.sp.entity_id,
                &request.id,
                true,
            );
            let url = redirect::build_url(
                &slo.response_location,
                Kind::Response,
                &xml,
                received.relay_state.as_deref().unwrap_or(""),
                Some(&app.sp.key),
            )
            .map_err(|e| LoginFailure::Internal(format!("signing the LogoutResponse: {e}")))?;
            Ok(AfterLogout::ToIdp(url))
        }
    }
}
