//! The demo's OpenID Connect sample app ("Portaal"): an app that knows nothing of SAML or of
//! the bridge's own hand-off, only OpenID Connect, and signs in with a real client library
//! (the `openidconnect` crate) exactly as an app's framework would: discovery, the code flow
//! with PKCE, the id_token verified against the JWKS (issuer, audience, nonce, expiry), and
//! userinfo. It runs in the demo's process but talks to the bridge over HTTP like any app.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreProviderMetadata};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClientId, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};

use super::DemoState;
use crate::config::App;
use crate::http::pages::{html_page, html_response, page_csp, Lang};
use crate::saml::xml::escape;

/// The sample app's paths (its redirect URI is `{bridge}/demo/oidc/callback`).
pub const HOME: &str = "/demo/oidc/";
pub const LOGIN: &str = "/demo/oidc/login";
pub const CALLBACK: &str = "/demo/oidc/callback";
/// The sample app's own cookie: which of its logins this browser started.
const STATE_COOKIE: &str = "demo_oidc_state";
/// At most this many started logins are remembered (a demo; the oldest go first).
const MAX_PENDING: usize = 1000;

/// Logins the sample app started, by `state`: the PKCE verifier and nonce it must check the
/// answer against (a real app keeps these in its own session).
#[derive(Default)]
pub struct Pending {
    by_state: Mutex<HashMap<String, (String, String)>>,
}

/// The bridge's claims beyond the standard ones, as the app reads them from userinfo.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BridgeClaims {
    school: Option<String>,
    affiliation: Option<Vec<String>>,
    tenant: Option<String>,
}

impl AdditionalClaims for BridgeClaims {}

/// The oidc app the sample plays (the first in the config).
fn sample_app(state: &DemoState) -> Option<&Arc<App>> {
    state.settings.apps.iter().find(|a| a.handoff.oidc.is_some())
}

fn issuer(state: &DemoState) -> String {
    state
        .settings
        .public_base_url
        .as_str()
        .trim_end_matches('/')
        .to_string()
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    html_response(status, html_page(Lang::Nl, title, body), &page_csp())
}

fn failed(what: &str, e: impl std::fmt::Display) -> Response {
    page(
        StatusCode::BAD_GATEWAY,
        "OpenID Connect sample app",
        &format!(
            "<h1>Inloggen mislukt</h1><p>{} <i lang=\"en\">(the client library refused)</i>: <code>{}</code></p><p><a href=\"/\">Terug naar de demo</a></p>",
            escape(what),
            escape(&e.to_string())
        ),
    )
}

fn http_client() -> Result<openidconnect::reqwest::Client, String> {
    // Redirects are not followed: OpenID Connect endpoints never redirect (SSRF hygiene).
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())
}

/// The sample app's start page.
pub async fn home(State(state): State<Arc<DemoState>>) -> Response {
    let Some(app) = sample_app(&state) else {
        return page(
            StatusCode::NOT_FOUND,
            "No oidc app",
            "<p>The demo config has no app in oidc mode.</p>",
        );
    };
    page(
        StatusCode::OK,
        "Portaal (OpenID Connect)",
        &format!(
            concat!(
                "<h1>{name}: een app met alleen OpenID Connect</h1>",
                "<p>Deze sample app kent geen SAML: hij logt in met een gewone OpenID Connect-client (de Rust-bibliotheek <code>openidconnect</code>), ",
                "met de bridge als provider (issuer <code>{issuer}</code>, client <code>{client}</code>, PKCE). ",
                "<i lang=\"en\">This sample app knows no SAML: it signs in with a plain OpenID Connect client library, the bridge being its provider.</i></p>",
                "<p><a href=\"{login}\">Inloggen met OpenID Connect / Sign in</a></p><p><a href=\"/\">Terug naar de demo</a></p>"
            ),
            name = escape(&app.display_name),
            issuer = escape(&issuer(&state)),
            client = escape(app.handoff.oidc.as_ref().map_or("", |c| c.client_id.as_str())),
            login = LOGIN,
        ),
    )
}

/// Starts a sign-in: discovery, then the authorization request the library makes.
pub async fn login(State(state): State<Arc<DemoState>>) -> Response {
    let Some(app) = sample_app(&state) else {
        return page(
            StatusCode::NOT_FOUND,
            "No oidc app",
            "<p>The demo config has no app in oidc mode.</p>",
        );
    };
    let Some(oidc) = app.handoff.oidc.as_ref() else {
        return page(StatusCode::NOT_FOUND, "No oidc app", "");
    };
    let (client, _) = match discovered_client(&state, oidc).await {
        Ok(c) => c,
        Err(e) => return failed(&e.0, e.1),
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    if let Ok(mut pending) = state.oidc_pending.by_state.lock() {
        if pending.len() >= MAX_PENDING {
            pending.clear();
        }
        pending.insert(
            csrf.secret().clone(),
            (verifier.secret().clone(), nonce.secret().clone()),
        );
    }
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, url.to_string()),
            (
                header::SET_COOKIE,
                format!(
                    "{STATE_COOKIE}={}; Path=/demo/oidc; HttpOnly; SameSite=Lax",
                    csrf.secret()
                ),
            ),
        ],
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The redirect URI: the code redeemed, the id_token verified, userinfo read, all shown.
pub async fn callback(
    State(state): State<Arc<DemoState>>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    if let Some(error) = q.error {
        return failed(
            "the provider answered",
            format!("{error}: {}", q.error_description.unwrap_or_default()),
        );
    }
    let (Some(code), Some(returned_state)) = (q.code, q.state) else {
        return failed("callback", "no code or state");
    };
    // The state must be the one this browser's cookie names (CSRF), and one the app started.
    let cookie_state = crate::http::cookies::get(&headers, STATE_COOKIE).unwrap_or_default();
    if cookie_state != returned_state {
        return failed("callback", "the state is not this browser's");
    }
    let Some((verifier, nonce)) = state
        .oidc_pending
        .by_state
        .lock()
        .ok()
        .and_then(|mut p| p.remove(&returned_state))
    else {
        return failed("callback", "unknown or used state");
    };
    let Some(app) = sample_app(&state) else {
        return failed("callback", "no oidc app");
    };
    let Some(oidc) = app.handoff.oidc.as_ref() else {
        return failed("callback", "no oidc app");
    };
    match sign_in(&state, oidc, code, verifier, nonce).await {
        Ok(shown) => page(StatusCode::OK, "Ingelogd met OpenID Connect", &shown),
        Err(e) => failed(&e.0, e.1),
    }
}

struct Failed(String, String);

/// The client as the library configures itself from the bridge's discovery document.
type DiscoveredClient =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// Discovery (as an app does at start; the demo does it per sign-in, to stay stateless) and
/// the client of `oidc`'s registration, with the HTTP client it talks through.
async fn discovered_client(
    state: &DemoState,
    oidc: &crate::handoff::oidc::OidcClient,
) -> Result<(DiscoveredClient, openidconnect::reqwest::Client), Failed> {
    let http = http_client().map_err(step("HTTP client"))?;
    let issuer_url = IssuerUrl::new(issuer(state)).map_err(step("issuer"))?;
    let metadata = CoreProviderMetadata::discover_async(issuer_url, &http)
        .await
        .map_err(step("discovery"))?;
    let redirect = oidc
        .redirect_uris
        .first()
        .map(|u| RedirectUrl::new(u.clone()))
        .ok_or_else(|| Failed("redirect URI".into(), "none configured".into()))?
        .map_err(step("redirect URI"))?;
    let client = CoreClient::from_provider_metadata(metadata, ClientId::new(oidc.client_id.clone()), None)
        .set_redirect_uri(redirect);
    Ok((client, http))
}

fn step<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> Failed + '_ {
    move |e| Failed(what.to_string(), e.to_string())
}

async fn sign_in(
    state: &DemoState,
    oidc: &crate::handoff::oidc::OidcClient,
    code: String,
    verifier: String,
    nonce: String,
) -> Result<String, Failed> {
    let (client, http) = discovered_client(state, oidc).await?;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(step("token endpoint"))?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&http)
        .await
        .map_err(step("token request"))?;
    let id_token = tokens
        .id_token()
        .ok_or_else(|| Failed("token response".into(), "no id_token".into()))?;
    // The library checks the signature (JWKS), issuer, audience, expiry and nonce.
    let claims = id_token
        .claims(&client.id_token_verifier(), &Nonce::new(nonce))
        .map_err(step("id_token"))?;
    let userinfo: UserInfoClaims<BridgeClaims, CoreGenderClaim> = client
        .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
        .map_err(step("userinfo endpoint"))?
        .request_async(&http)
        .await
        .map_err(step("userinfo"))?;
    // Shown as the token says them: the payload of the id_token the library just verified.
    let payload = id_token
        .to_string()
        .split('.')
        .nth(1)
        .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .unwrap_or_default();
    let rows = super::sample_app::claim_rows;
    let info = serde_json::to_value(&userinfo).unwrap_or_default();
    let hint = url::form_urlencoded::byte_serialize(id_token.to_string().as_bytes()).collect::<String>();
    let back = oidc
        .post_logout_redirect_uris
        .first()
        .map(|u| url::form_urlencoded::byte_serialize(u.as_bytes()).collect::<String>())
        .unwrap_or_default();
    Ok(format!(
        concat!(
            "<h1>Ingelogd met OpenID Connect</h1>",
            "<p>Persoonscode (<code>sub</code>): <b>{sub}</b>, school <b>{school}</b>. De client-bibliotheek heeft de id_token gecontroleerd ",
            "(handtekening via de JWKS, issuer, audience, nonce, geldigheid) en userinfo opgehaald. ",
            "<i lang=\"en\">The client library verified the id_token (signature via the JWKS, issuer, audience, nonce, expiry) and fetched userinfo.</i></p>",
            "<h2>id_token</h2><table id=\"id-token\">{id_rows}</table><h2>userinfo</h2><table id=\"userinfo\">{info_rows}</table>",
            "<p><a id=\"logout\" href=\"{issuer}/oidc/logout?id_token_hint={hint}&amp;post_logout_redirect_uri={back}&amp;state=demo\">Uitloggen / Log out</a> ",
            "<a href=\"/\">Terug naar de demo</a></p>"
        ),
        sub = escape(claims.subject().as_str()),
        school = escape(userinfo.additional_claims().school.as_deref().unwrap_or("-")),
        id_rows = rows(&payload),
        info_rows = rows(&info),
        issuer = escape(&issuer(state)),
        hint = hint,
        back = back,
    ))
}
