//! oidc mode's use case: the authorization request answered from the browser's OP session or
//! by a SAML login of the app, the code issued when that login ends (after first-time
//! linking too), redeemed once at the token endpoint, the userinfo answer, and the checks of
//! RP-initiated logout. The checks of each request are `handoff::oidc`'s; this module ties
//! them to the stores and the SAML login. The OP session is the app's session (the store's
//! [`AppSession`]); its `sid` is derived from its id ([`tokens::sid_of`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::start::{start_for, Started};
use super::{LoginFailure, Services};
use crate::config::App;
use crate::cpu_pool::RunError;
use crate::handoff::oidc::authorize::{self, Authorization, AuthorizeErrorCode, Checked, Prompt, RedirectRefusal};
use crate::handoff::oidc::client_auth::{self, ClientAuthError, Presented};
use crate::handoff::oidc::{pkce, tokens, OidcClient};
use crate::identity::Identity;
use crate::jws::Alg;
use crate::store::{AccessGrant, AppSession, CodeGrant, StoreError};

/// An OIDC request that cannot be answered at the client: a page with a reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcRefusal {
    #[error("the authorization request has no single client_id or redirect_uri")]
    RequestMalformed,
    #[error("no app has the client_id {0:?}")]
    UnknownClient(String),
    #[error("redirect_uri {0:?} is not registered for this client")]
    RedirectUriNotRegistered(String),
    #[error("the id_token_hint is not a token this bridge issued: {0}")]
    IdTokenHintInvalid(String),
    #[error("post_logout_redirect_uri {0:?} is not registered for this client (or no client is named)")]
    PostLogoutRedirectUriNotRegistered(String),
}

impl OidcRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            OidcRefusal::RequestMalformed => "oidc_request_malformed",
            OidcRefusal::UnknownClient(_) => "oidc_unknown_client",
            OidcRefusal::RedirectUriNotRegistered(_) => "oidc_redirect_uri_not_registered",
            OidcRefusal::IdTokenHintInvalid(_) => "oidc_id_token_hint_invalid",
            OidcRefusal::PostLogoutRedirectUriNotRegistered(_) => "oidc_post_logout_redirect_uri_not_registered",
        }
    }
}

impl From<authorize::PageRefusal> for OidcRefusal {
    fn from(r: authorize::PageRefusal) -> Self {
        match r {
            authorize::PageRefusal::Malformed => OidcRefusal::RequestMalformed,
            authorize::PageRefusal::UnknownClient(id) => OidcRefusal::UnknownClient(id),
            authorize::PageRefusal::RedirectUriNotRegistered(uri) => OidcRefusal::RedirectUriNotRegistered(uri),
        }
    }
}

/// The app whose client registration has `client_id`.
pub fn app_of_client<'a>(apps: &'a [Arc<App>], client_id: &str) -> Option<(&'a Arc<App>, &'a OidcClient)> {
    apps.iter().find_map(|app| {
        app.handoff
            .oidc
            .as_ref()
            .filter(|c| c.client_id == client_id)
            .map(|c| (app, c))
    })
}

/// What an authorization request leads to.
#[derive(Debug)]
pub enum Authorized {
    /// Back to the client: with a code (the browser's session answered) or an error.
    ToClient(String),
    /// A SAML login of the app first; the code is issued at its end.
    Login(Started),
}

/// The browser's OP session for this app, when it has one: its id and the session.
pub type OpSession = (String, AppSession);

/// Answers a checked authorization request of `app`, given the browser's OP session.
pub async fn authorize(
    services: Services<'_>,
    app: &App,
    checked: Checked,
    session: Option<OpSession>,
) -> Result<Authorized, LoginFailure> {
    let issuer = issuer(services);
    let now = SystemTime::now();
    let max_age = checked.max_age;
    let usable = session.filter(|(_, s)| {
        checked.prompt != Prompt::Login
            && checked.max_age.is_none_or(|max| {
                now.duration_since(s.authenticated_at).unwrap_or(Duration::ZERO) <= Duration::from_secs(max)
            })
    });
    match (usable, checked.prompt) {
        (Some((id, s)), _) => {
            let location = issue_code(
                services,
                app,
                &checked.authorization,
                &s.identity,
                &id,
                s.authenticated_at,
            )
            .await?;
            tracing::info!(
                app = app.name,
                client = checked.authorization.client_id,
                "authorized from the OP session"
            );
            Ok(Authorized::ToClient(location))
        }
        (None, Prompt::None) => {
            tracing::info!(
                app = app.name,
                client = checked.authorization.client_id,
                "prompt=none without a session"
            );
            let refusal = RedirectRefusal::new(
                &checked.authorization,
                AuthorizeErrorCode::LoginRequired,
                "the student has no session at the bridge",
            );
            Ok(Authorized::ToClient(refusal.location(&issuer)))
        }
        (None, prompt) => {
            let started = start_for(
                services,
                app,
                None,
                Some(checked.authorization),
                // max_age not met by a session: the OP must actively re-authenticate (OIDC
                // Core 3.1.2.1), and auth_time (the session's start) is only true when the
                // IdP did not answer from its own older session.
                prompt == Prompt::Login || max_age.is_some(),
            )
            .await?;
            Ok(Authorized::Login(started))
        }
    }
}

/// Issues a code for `authorization` to `identity` of the OP session `session_id` and
/// returns the redirect to the client that carries it.
pub async fn issue_code(
    services: Services<'_>,
    app: &App,
    authorization: &Authorization,
    identity: &Identity,
    session_id: &str,
    authenticated_at: SystemTime,
) -> Result<String, LoginFailure> {
    // The client's registration as it is now: a reload may have removed the redirect URI
    // since the login started.
    let registered = app
        .handoff
        .oidc
        .as_ref()
        .is_some_and(|c| c.client_id == authorization.client_id && c.has_redirect_uri(&authorization.redirect_uri));
    if !registered {
        return Err(LoginFailure::Oidc(OidcRefusal::RedirectUriNotRegistered(
            authorization.redirect_uri.clone(),
        )));
    }
    let code = tokens::random_secret();
    let grant = CodeGrant {
        app: app.name.clone(),
        authorization: authorization.clone(),
        identity: identity.clone(),
        sid: tokens::sid_of(session_id),
        auth_time: unix(authenticated_at),
        expires_at: SystemTime::now() + tokens::CODE_LIFETIME,
    };
    services.store.put_code(&tokens::storage_key(&code), grant).await?;
    Ok(authorize::code_location(authorization, &code, &issuer(services)))
}

/// A token request's grant fields (RFC 6749 4.1.3), each at most once.
#[derive(Debug, Default, Clone)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
}

/// The token endpoint's answer.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub id_token: String,
    pub expires_in: u64,
}

/// The token endpoint's errors (RFC 6749 5.2).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    #[error("invalid_client: {0}")]
    InvalidClient(&'static str),
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("the state store is unavailable: {0}")]
    Unavailable(String),
    /// The signing threads are all busy and their queue is full.
    #[error("{0}")]
    Busy(String),
    #[error("server_error: {0}")]
    Server(String),
}

impl TokenError {
    /// The `error` member of the answer.
    pub fn error(&self) -> &'static str {
        match self {
            TokenError::InvalidRequest(_) => "invalid_request",
            TokenError::InvalidClient(_) => "invalid_client",
            TokenError::InvalidGrant(_) => "invalid_grant",
            TokenError::UnsupportedGrantType => "unsupported_grant_type",
            TokenError::Unavailable(_) | TokenError::Busy(_) => "temporarily_unavailable",
            TokenError::Server(_) => "server_error",
        }
    }

    /// The HTTP status: 401 for a failed client authentication, 503 while the store is away.
    pub fn status(&self) -> u16 {
        match self {
            TokenError::InvalidClient(_) => 401,
            TokenError::Unavailable(_) | TokenError::Busy(_) => 503,
            TokenError::Server(_) => 500,
            _ => 400,
        }
    }

    /// The `error_description`: never a secret or a code.
    pub fn description(&self) -> &'static str {
        match self {
            TokenError::InvalidRequest(d) | TokenError::InvalidClient(d) | TokenError::InvalidGrant(d) => d,
            TokenError::UnsupportedGrantType => "only grant_type=authorization_code is supported",
            TokenError::Unavailable(_) | TokenError::Busy(_) => "try again in a moment",
            TokenError::Server(_) => "the bridge could not issue the tokens",
        }
    }
}

impl From<StoreError> for TokenError {
    fn from(e: StoreError) -> Self {
        TokenError::Unavailable(e.to_string())
    }
}

impl From<ClientAuthError> for TokenError {
    fn from(e: ClientAuthError) -> Self {
        match e {
            ClientAuthError::Malformed(why) => TokenError::InvalidRequest(why),
            ClientAuthError::Failed => TokenError::InvalidClient("client authentication failed"),
        }
    }
}

/// The token endpoint: the client authenticated first (an unauthenticated request never
/// touches a code), then the code taken (once, on any instance) and checked against the
/// client, the redirect URI and the PKCE verifier. A code that fails a check is gone: a
/// stolen code tried by the wrong party cannot be tried again by anyone.
pub async fn redeem(
    services: Services<'_>,
    apps: &[Arc<App>],
    presented: &Presented,
    form: &TokenForm,
) -> Result<(Arc<App>, Tokens), TokenError> {
    let (app, client) =
        app_of_client(apps, &presented.client_id).ok_or(TokenError::InvalidClient("client authentication failed"))?;
    client_auth::authenticate(client, presented)?;
    match form.grant_type.as_deref() {
        Some("authorization_code") => {}
        None => return Err(TokenError::InvalidRequest("grant_type is missing")),
        Some(_) => return Err(TokenError::UnsupportedGrantType),
    }
    let code = form
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 256)
        .ok_or(TokenError::InvalidRequest("code is missing"))?;
    let verifier = form
        .code_verifier
        .as_deref()
        .ok_or(TokenError::InvalidRequest("code_verifier is missing (PKCE)"))?;
    let grant = services
        .store
        .take_code(&tokens::storage_key(code))
        .await?
        .ok_or(TokenError::InvalidGrant("the code is unknown, expired or already used"))?;
    if grant.app != app.name || grant.authorization.client_id != client.client_id {
        tracing::warn!(
            app = app.name,
            code_of = grant.app,
            "a code of another client was presented"
        );
        return Err(TokenError::InvalidGrant("the code was issued to another client"));
    }
    if form.redirect_uri.as_deref() != Some(grant.authorization.redirect_uri.as_str()) {
        return Err(TokenError::InvalidGrant(
            "redirect_uri is not the one of the authorization request",
        ));
    }
    if !pkce::verifier_matches(verifier, &grant.authorization.code_challenge) {
        return Err(TokenError::InvalidGrant(
            "the code_verifier does not match the code_challenge",
        ));
    }
    let key = tokens::storage_key(code);
    let kept = grant.clone();
    match mint(services, app, client, grant).await {
        Ok(tokens) => Ok((app.clone(), tokens)),
        // The code was valid and the bridge could not finish: it goes back (with its own
        // expiry), so that the client's retry, which the 503 invites, can still redeem it.
        Err(e @ (TokenError::Busy(_) | TokenError::Unavailable(_))) => {
            if let Err(put_back) = services.store.put_code(&key, kept).await {
                tracing::warn!(
                    app = app.name,
                    "a code could not be put back after a failure: {put_back}"
                );
            }
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// The id_token and an access token for a redeemed grant.
async fn mint(services: Services<'_>, app: &App, client: &OidcClient, grant: CodeGrant) -> Result<Tokens, TokenError> {
    let lifetime = app.handoff.token_lifetime;
    let now = SystemTime::now();
    let claims = tokens::id_token_claims(
        &grant.identity,
        &tokens::IdTokenContext {
            issuer: &issuer(services),
            client_id: &client.client_id,
            lifetime,
            now_unix: unix(now),
            auth_time: grant.auth_time,
            nonce: grant.authorization.nonce.as_deref(),
            sid: &grant.sid,
        },
    );
    let signer = services
        .jwt_keys
        .signer_for(client.id_token_alg)
        .ok_or_else(|| TokenError::Server(format!("no key signs {}", client.id_token_alg.name())))?;
    let signed = match client.id_token_alg {
        // An RSA signature (some 0.3 ms of CPU) goes to the validation threads, so that a
        // burst of token requests waits there, not on the workers every other request needs.
        Alg::Rs256 => services
            .validation
            .run(move || signer.sign(&claims, "JWT"))
            .await
            .map_err(|e| match e {
                RunError::Busy(busy) => TokenError::Busy(busy.to_string()),
                RunError::Lost(lost) => TokenError::Server(lost.to_string()),
            })?,
        // An ES256 one costs what the hand-off token of jwt mode does (some 20 us): signed
        // here, as that one is, since the hop to a thread would cost more than it.
        _ => signer.sign(&claims, "JWT"),
    };
    let id_token = signed.map_err(|e| TokenError::Server(format!("signing the id_token: {e}")))?;
    let access_token = tokens::random_secret();
    let access = AccessGrant {
        app: app.name.clone(),
        client_id: client.client_id.clone(),
        identity: grant.identity,
        expires_at: now + lifetime,
    };
    services
        .store
        .put_access_token(&tokens::storage_key(&access_token), access)
        .await?;
    tracing::info!(
        target: "audit",
        event = "oidc_tokens",
        app = app.name,
        client = client.client_id,
        "tokens issued"
    );
    Ok(Tokens {
        access_token,
        id_token,
        expires_in: lifetime.as_secs(),
    })
}

/// Why userinfo refuses (RFC 6750 3.1).
#[derive(Debug, thiserror::Error)]
pub enum UserinfoError {
    #[error("no Bearer access token")]
    NoToken,
    #[error("the access token is unknown or expired")]
    InvalidToken,
    #[error("the state store is unavailable: {0}")]
    Unavailable(String),
}

/// The claims of the access token's person.
pub async fn userinfo(services: Services<'_>, access_token: Option<&str>) -> Result<Value, UserinfoError> {
    let token = access_token
        .filter(|t| !t.is_empty() && t.len() <= 256)
        .ok_or(UserinfoError::NoToken)?;
    let grant = services
        .store
        .get_access_token(&tokens::storage_key(token))
        .await
        .map_err(|e| UserinfoError::Unavailable(e.to_string()))?
        .ok_or(UserinfoError::InvalidToken)?;
    Ok(tokens::userinfo_claims(
        &grant.identity,
        &issuer(services),
        &grant.client_id,
    ))
}

/// RP-initiated logout's parameters (RP-Initiated Logout 1.0, 2), each at most once.
#[derive(Debug, Default, Clone)]
pub struct EndSessionQuery {
    pub id_token_hint: Option<String>,
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
}

/// A checked logout request: the client it is for (when named) and where the browser goes
/// when the logout is done.
#[derive(Debug)]
pub struct EndSession {
    pub app: Option<Arc<App>>,
    pub return_to: Option<String>,
    /// The `sid` of the id_token_hint: the session the client means.
    pub hint_sid: Option<String>,
}

/// Longest id_token_hint read (the bridge's id_tokens are about 1 KiB).
const MAX_HINT_LEN: usize = 16 * 1024;

/// Checks a logout request: an id_token_hint must be one of this bridge's id_tokens (its
/// signature and issuer; it may have expired), a client_id must agree with it, and a
/// post_logout_redirect_uri must be registered for the client they name.
pub fn end_session(
    services: Services<'_>,
    apps: &[Arc<App>],
    query: &EndSessionQuery,
) -> Result<EndSession, OidcRefusal> {
    let mut hint_sid = None;
    let hinted = match &query.id_token_hint {
        None => None,
        Some(hint) => {
            let claims = services
                .jwt_keys
                .verify_own(hint, MAX_HINT_LEN)
                .map_err(|e| OidcRefusal::IdTokenHintInvalid(e.to_string()))?;
            if claims["iss"].as_str() != Some(issuer(services).as_str()) {
                return Err(OidcRefusal::IdTokenHintInvalid("another issuer".into()));
            }
            hint_sid = claims["sid"].as_str().map(str::to_string);
            let aud = match &claims["aud"] {
                Value::String(a) => a.clone(),
                Value::Array(a) if a.len() == 1 => a[0].as_str().unwrap_or_default().to_string(),
                _ => return Err(OidcRefusal::IdTokenHintInvalid("no single audience".into())),
            };
            Some(aud)
        }
    };
    let client_id = match (hinted, &query.client_id) {
        (Some(a), Some(c)) if &a != c => {
            return Err(OidcRefusal::IdTokenHintInvalid(
                "its audience is not the client_id given".into(),
            ))
        }
        (Some(a), _) => Some(a),
        (None, c) => c.clone(),
    };
    let found = match &client_id {
        Some(id) => Some(app_of_client(apps, id).ok_or_else(|| OidcRefusal::UnknownClient(id.clone()))?),
        None => None,
    };
    let return_to = match &query.post_logout_redirect_uri {
        None => None,
        Some(uri) => match found {
            Some((_, client)) if client.has_post_logout_redirect_uri(uri) => {
                let state: Vec<(&str, &str)> = query.state.iter().map(|s| ("state", s.as_str())).collect();
                Some(authorize::with_query(uri, &state))
            }
            _ => return Err(OidcRefusal::PostLogoutRedirectUriNotRegistered(uri.clone())),
        },
    };
    Ok(EndSession {
        app: found.map(|(app, _)| app.clone()),
        return_to,
        hint_sid,
    })
}

fn issuer(services: Services<'_>) -> String {
    services.public_base_url.trim_end_matches('/').to_string()
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
