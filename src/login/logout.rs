//! Logout and Single Logout. [`logout`] ends this app's bridge sessions in the browser and,
//! when the IdP has a SingleLogoutService, makes a signed LogoutRequest for it (Redirect
//! binding). [`single_logout`] takes what the IdP sends to the SLS: its LogoutResponse
//! (signature checked, and it must answer our request) or its own LogoutRequest (signature
//! checked; every session of that subject in this app ends; the answer is a signed
//! LogoutResponse).

use std::time::{Duration, SystemTime};

use super::{Answer, CookieChange, LoginFailure, Services};
use crate::config::App;
use crate::handoff::oidc::tokens;
use crate::saml::logout;
use crate::saml::redirect::{self, Kind};
use crate::store::{EndedSession, PendingLogin, Subject};

/// How long a sent LogoutRequest waits for its answer.
const LOGOUT_WAIT: Duration = Duration::from_secs(600);

/// Where the browser goes after a logout step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterLogout {
    /// To the IdP with a signed message: our LogoutRequest, or our LogoutResponse to its.
    ToIdp(String),
    /// Logged out here: to `target` (`post_logout_url`), or the logged-out page when `None`,
    /// which says what `ended`.
    Finished { target: Option<String>, ended: LoggedOut },
}

/// What a logout ended, for the page a student on a shared computer reads: the bridge's
/// session and whether the IdP's (Entree's) ended too, or is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggedOut {
    /// The browser had a live session of this app at the bridge, and it ended.
    pub bridge_session: bool,
    pub idp: IdpLogout,
}

/// The IdP's side of a logout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdpLogout {
    /// Single Logout ran: the IdP ended its session (or started the logout itself).
    Ended,
    /// The IdP answered our LogoutRequest without success: its session may be open.
    Refused,
    /// The IdP has no SingleLogoutService: its session is still open.
    NotOffered,
    /// No session here named an IdP session to end (jwt mode keeps none, or it had expired):
    /// the IdP's session, if any, is still open.
    NotAsked,
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
    let after = app.post_logout_url.as_ref().map(|u| u.to_string());
    logout_to(services, app, current, presented, after).await
}

/// [`logout`] that ends at `after` (RP-initiated logout: the client's registered
/// post_logout_redirect_uri), or the logged-out page when `None`.
pub async fn logout_to(
    services: Services<'_>,
    app: &App,
    current: Option<Subject>,
    presented: &[&str],
    after: Option<String>,
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
        (Some(subject), Some(slo)) => start_single_logout(services, app, &subject, &slo.location, after)
            .await
            .map(AfterLogout::ToIdp),
        (current, _) => {
            let bridge_session = current.is_some();
            let idp = match bridge_session {
                true => IdpLogout::NotOffered,
                false => IdpLogout::NotAsked,
            };
            Ok(AfterLogout::Finished {
                target: after,
                ended: LoggedOut { bridge_session, idp },
            })
        }
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
    after: Option<String>,
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
        target: after,
        // Random, never empty: this entry shares the store with pending logins.
        browser_nonce: crate::keys::random_token(),
        expires_at: SystemTime::now() + LOGOUT_WAIT,
        oidc: None,
        force_authn: false,
    };
    services.store.put_pending(&relay_state, pending).await?;
    Ok(url)
}

/// A Back-Channel Logout token to deliver (oidc mode): the app's sessions ended at the IdP's
/// request. The http layer POSTs it; nothing waits for the app's answer.
#[derive(Debug, Clone)]
pub struct LogoutNotice {
    pub app: String,
    pub uri: url::Url,
    pub logout_token: String,
}

/// The SLS: `raw_query` is the Redirect binding's query as sent (its signature covers it).
/// An IdP-initiated logout of an oidc app with a `backchannel_logout_uri` also returns the
/// logout tokens of the sessions it ended.
pub async fn single_logout(services: Services<'_>, app: &App, raw_query: &str) -> SingleLogout {
    let mut notices = Vec::new();
    let result = receive_at_sls(services, app, raw_query, &mut notices).await;
    SingleLogout { result, notices }
}

/// The SLS's answer and the logout tokens to deliver, which go out whatever the answer: a
/// replayed LogoutRequest is refused, but the sessions it ended are ended, and their apps
/// must hear it.
#[derive(Debug)]
pub struct SingleLogout {
    pub result: Result<AfterLogout, LoginFailure>,
    pub notices: Vec<LogoutNotice>,
}

async fn receive_at_sls(
    services: Services<'_>,
    app: &App,
    raw_query: &str,
    notices: &mut Vec<LogoutNotice>,
) -> Result<AfterLogout, LoginFailure> {
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
            // Single Logout starts only from a live session, which ended before it went out.
            let idp = match answer.success {
                true => IdpLogout::Ended,
                false => IdpLogout::Refused,
            };
            Ok(AfterLogout::Finished {
                target: pending.target,
                ended: LoggedOut {
                    bridge_session: true,
                    idp,
                },
            })
        }
        Kind::Request => {
            let skew = chrono::Duration::from_std(app.federation.trust.clock_skew).unwrap_or_default();
            let request = logout::read_request(&received.xml, &idp.entity_id, &sls_url, chrono::Utc::now(), skew)?;
            // The sessions end first, and only then is the request recorded as used: if the
            // store fails halfway, the IdP's retry must still be able to end the rest. A replay
            // can thus end the subject's sessions once more before it is refused: logging out
            // too much, never too little.
            let ended_sessions = services
                .store
                .end_sessions_of(&app.name, &request.name_id)
                .await
                .map_err(|e| LoginFailure::StoreUnavailable(e.to_string()))?;
            let ended = ended_sessions.len();
            notices.extend(logout_notices(services, app, &ended_sessions).await);
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
                return Ok(AfterLogout::Finished {
                    target: None,
                    ended: LoggedOut {
                        bridge_session: ended > 0,
                        idp: IdpLogout::Ended,
                    },
                });
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

/// The Back-Channel Logout tokens for the sessions an IdP-initiated logout ended, when the
/// app takes them. They are signed together on the validation threads (a subject may have
/// many sessions, and an RSA signature is some 0.3 ms of CPU), or here when those are full.
/// A token that cannot be signed is logged and skipped: the sessions have ended either way.
async fn logout_notices(services: Services<'_>, app: &App, ended: &[EndedSession]) -> Vec<LogoutNotice> {
    let Some((client, uri)) = app
        .handoff
        .oidc
        .as_ref()
        .and_then(|c| c.backchannel_logout_uri.as_ref().map(|u| (c, u)))
    else {
        return Vec::new();
    };
    if ended.is_empty() {
        return Vec::new();
    }
    let Some(signer) = services.jwt_keys.signer_for(client.id_token_alg) else {
        tracing::error!(
            app = app.name,
            "cannot sign logout tokens: no key signs {}",
            client.id_token_alg.name()
        );
        return Vec::new();
    };
    let now = chrono::Utc::now().timestamp();
    let issuer = services.public_base_url.trim_end_matches('/');
    let claims: Vec<serde_json::Value> = ended
        .iter()
        .map(|session| {
            tokens::logout_token_claims(
                issuer,
                &client.client_id,
                &session.person_code,
                &tokens::sid_of(&session.id),
                now,
            )
        })
        .collect();
    let sign_all = move |signer: &crate::handoff::jwt::OwnedSigner, claims: &[serde_json::Value]| {
        claims
            .iter()
            .map(|c| signer.sign(c, tokens::LOGOUT_TOKEN_TYP).map_err(|e| e.to_string()))
            .collect::<Vec<_>>()
    };
    let on_pool = {
        let (signer, claims) = (signer.clone(), claims.clone());
        services.validation.run(move || sign_all(&signer, &claims)).await
    };
    let signed = on_pool.unwrap_or_else(|_| sign_all(&signer, &claims));
    signed
        .into_iter()
        .filter_map(|result| match result {
            Ok(logout_token) => Some(LogoutNotice {
                app: app.name.clone(),
                uri: uri.clone(),
                logout_token,
            }),
            Err(e) => {
                tracing::error!(app = app.name, "cannot sign a logout token: {e}");
                None
            }
        })
        .collect()
}
