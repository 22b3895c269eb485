//! The start of a login (`{base}/saml2/{federation}/login`): the target checked, an
//! AuthnRequest for the app's IdP made (and signed when the IdP wants it), and the pending
//! login stored under a fresh RelayState with the nonce of the browser's login cookie.

use std::time::{Duration, SystemTime};

use super::{target, CookieChange, LoginFailure, Services};
use crate::config::App;
use crate::handoff::oidc::authorize::Authorization;
use crate::saml::authn_request::AuthnRequest;
use crate::store::PendingLogin;

/// How long a started login waits for the IdP's answer.
pub const PENDING_LOGIN_LIFETIME: Duration = Duration::from_secs(600);

/// A login on its way to the IdP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The IdP's SingleSignOnService with the (signed) AuthnRequest: where the browser goes.
    pub location: String,
    /// The login cookie that binds the answer to this browser.
    pub cookie: CookieChange,
}

/// Starts a login of `app` that returns the student to `target` (checked against the app's
/// allowed origins) afterwards.
pub async fn start(services: Services<'_>, app: &App, target: Option<String>) -> Result<Started, LoginFailure> {
    start_for(services, app, target, None, false).await
}

/// [`start`] for an OpenID Connect authorization request (`oidc`: the code is issued when
/// the login ends), `force_authn` for `prompt=login`.
pub async fn start_for(
    services: Services<'_>,
    app: &App,
    target: Option<String>,
    oidc: Option<Authorization>,
    force_authn: bool,
) -> Result<Started, LoginFailure> {
    let target = match target {
        None => None,
        Some(raw) => Some(target::check(app, &raw).ok_or(LoginFailure::TargetNotAllowed(raw))?),
    };
    let request_id = crate::keys::random_saml_id();
    let relay_state = crate::keys::random_token();
    let nonce = crate::keys::random_token();
    let idp = services.metadata.idp(&app.federation.name)?;
    let request = AuthnRequest {
        id: &request_id,
        sp_entity_id: &app.sp.entity_id,
        acs_url: &app.sp.acs_url,
        destination: &idp.sso_redirect_url,
        force_authn,
    };
    let sign_with = idp.want_authn_requests_signed.then_some(&app.sp.key);
    let location = request
        .redirect_url(&relay_state, sign_with)
        .map_err(|e| LoginFailure::Internal(format!("signing the AuthnRequest: {e}")))?;
    let pending = PendingLogin {
        request_id: request_id.clone(),
        app: app.name.clone(),
        target,
        browser_nonce: nonce.clone(),
        expires_at: SystemTime::now() + PENDING_LOGIN_LIFETIME,
        oidc,
        force_authn,
    };
    let for_client = pending.oidc.as_ref().map(|a| a.client_id.clone());
    services.store.put_pending(&relay_state, pending).await?;
    tracing::info!(
        app = app.name,
        request_id,
        oidc_client = for_client,
        force_authn,
        "login started"
    );
    Ok(Started {
        location,
        cookie: CookieChange::SetLogin { relay_state, nonce },
    })
}
