//! oidc mode in the tests: two apps in oidc mode (`portal`, a confidential client, and `spa`,
//! a public one that authenticates with PKCE alone), the bridge's RSA key their id_tokens
//! need, and the steps of a login through them with the development IdP answering.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use entree_bridge::keys::{self, KeyKind};

use super::{started_login_from, Bridge, StartedLogin};

pub const CLIENT_ID: &str = "portal-web";
/// Unreserved characters only: Authlib sends `client_secret_basic` without form-encoding.
pub const CLIENT_SECRET: &str = "portal-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
pub const REDIRECT_URI: &str = "http://localhost/portal/cb";
pub const POST_LOGOUT_URI: &str = "http://localhost/portal/logged-out";
pub const PUBLIC_CLIENT_ID: &str = "spa";
pub const PUBLIC_REDIRECT_URI: &str = "http://127.0.0.1/spa/cb";

/// `{port}` is the bridge's: the apps' SAML routes live on its origin.
pub const OIDC_APPS: &str = r#"
[apps.portal]
federation = "kennisnet"
base_url = "http://127.0.0.1:{port}/portal"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["99XX", "12AB03"]
[apps.portal.tenants]
"99XX" = "ingang-a"
[apps.portal.person]
attribute = "nlEduPersonRealId"
pattern = "^(?P<code>[^@]+)@"
[apps.portal.handoff]
mode = "oidc"
client_id = "portal-web"
client_secret = "portal-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
redirect_uris = ["http://localhost/portal/cb"]
post_logout_redirect_uris = ["http://localhost/portal/logged-out"]
token_lifetime = "5m"
[apps.portal.claims]
given_name = "givenName"

[apps.spa]
federation = "kennisnet"
base_url = "http://127.0.0.1:{port}/spa"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
[apps.spa.person]
attribute = "nlEduPersonRealId"
[apps.spa.handoff]
mode = "oidc"
redirect_uris = ["http://127.0.0.1/spa/cb"]
"#;

/// The `prepare` hook of [`Bridge::start_oidc`]: an RSA key next to the harness's EC one.
pub fn write_rsa_key(dir: &Path) {
    keys::write_private_key(
        &dir.join("jwt-rsa.pem"),
        &keys::generate_key(KeyKind::Rsa2048).expect("key"),
    )
    .expect("write");
}

/// The `edit` hook of [`Bridge::start_oidc`]: both keys configured (the EC one still signs
/// jwt-mode tokens; id_tokens take the RSA one).
pub fn with_rsa_key(config: String) -> String {
    config.replace(
        r#"jwt_signing_key = "jwt.pem""#,
        r#"jwt_signing_key = ["jwt.pem", "jwt-rsa.pem"]"#,
    )
}

/// A PKCE pair (RFC 7636, S256).
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Pkce {
        let verifier = B64URL.encode(keys::random_bytes::<32>());
        let digest = openssl::hash::hash(openssl::hash::MessageDigest::sha256(), verifier.as_bytes()).expect("sha256");
        Pkce {
            challenge: B64URL.encode(digest),
            verifier,
        }
    }
}

/// An authorization request of `client_id` for `redirect_uri` with PKCE S256, `state` and
/// `nonce`; `extra` (e.g. `&prompt=none`) is appended as it is.
pub fn authorize_url(bridge: &Bridge, client_id: &str, redirect_uri: &str, pkce: &Pkce, extra: &str) -> String {
    authorize_url_at(&bridge.base, client_id, redirect_uri, pkce, extra)
}

/// `authorize_url` for the bridge at `base` (any instance of several).
pub fn authorize_url_at(base: &str, client_id: &str, redirect_uri: &str, pkce: &Pkce, extra: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "openid")
        .append_pair("state", "state-1")
        .append_pair("nonce", "nonce-1")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    format!("{base}/oidc/authorize?{query}{extra}")
}

/// The value of `name` in the query of `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// GETs `authorize` in `client` and returns the login it starts at the IdP (asserting that
/// it does start one).
pub async fn start_authorization(client: &reqwest::Client, authorize: &str) -> StartedLogin {
    let resp = client.get(authorize).send().await.expect("authorize");
    assert_eq!(resp.status(), 302, "authorize starts a login: {:?}", resp.headers());
    let location = resp.headers()["location"].to_str().expect("location").to_string();
    assert!(
        location.starts_with("https://idp.test.invalid/sso?"),
        "to the IdP: {location}"
    );
    started_login_from(location)
}

/// The development IdP answers `login` of `app` (for the student `real_id`) and the browser
/// posts it to the ACS; returns the ACS's redirect (to the client, with the code).
pub async fn answer_at_acs(client: &reqwest::Client, bridge: &Bridge, app: &str, login: &StartedLogin) -> String {
    let spec = bridge.spec(app, Some(&login.request_id));
    let xml = bridge.idp.response(&spec).expect("sign");
    let resp = super::post_acs_response(client, bridge, app, &xml, Some(&login.relay_state)).await;
    assert_eq!(resp.status(), 302, "the ACS redirects to the client");
    resp.headers()["location"].to_str().expect("location").to_string()
}

/// A whole authorization in `client`: authorize, the IdP, the ACS. Returns the redirect to
/// the client (`redirect_uri?code=..&state=..&iss=..`).
pub async fn authorize_through_dev_idp(
    client: &reqwest::Client,
    bridge: &Bridge,
    app: &str,
    authorize: &str,
) -> String {
    let login = start_authorization(client, authorize).await;
    answer_at_acs(client, bridge, app, &login).await
}

/// How a token request authenticates its client.
#[derive(Debug, Clone, Copy)]
pub enum ClientAuth<'a> {
    Basic(&'a str, &'a str),
    Post(&'a str, &'a str),
    Public(&'a str),
}

/// POSTs a token request for `code` and returns the answer.
pub async fn redeem(
    bridge: &Bridge,
    auth: ClientAuth<'_>,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> reqwest::Response {
    redeem_at(
        &reqwest::Client::new(),
        &bridge.base,
        auth,
        code,
        redirect_uri,
        verifier,
    )
    .await
}

/// `redeem` through `http` at the bridge at `base` (any instance of several).
pub async fn redeem_at(
    http: &reqwest::Client,
    base: &str,
    auth: ClientAuth<'_>,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", code.to_string()),
        ("redirect_uri", redirect_uri.to_string()),
        ("code_verifier", verifier.to_string()),
    ];
    let mut request = http.post(format!("{base}/oidc/token"));
    match auth {
        ClientAuth::Basic(id, secret) => request = request.basic_auth(id, Some(secret)),
        ClientAuth::Post(id, secret) => {
            form.push(("client_id", id.to_string()));
            form.push(("client_secret", secret.to_string()));
        }
        ClientAuth::Public(id) => form.push(("client_id", id.to_string())),
    }
    request.form(&form).send().await.expect("token request")
}

/// The claims of a JWT, not verified (what the bridge put in it).
pub fn claims_of(jwt: &str) -> serde_json::Value {
    let part = jwt.split('.').nth(1).expect("claims part");
    serde_json::from_slice(&B64URL.decode(part).expect("base64url")).expect("json")
}

/// The header of a JWT.
pub fn header_of(jwt: &str) -> serde_json::Value {
    let part = jwt.split('.').next().expect("header part");
    serde_json::from_slice(&B64URL.decode(part).expect("base64url")).expect("json")
}

/// Like [`answer_at_acs`], with the IdP's response spec changed by `edit` first (e.g. the
/// NameID a later LogoutRequest names).
pub async fn answer_at_acs_with(
    client: &reqwest::Client,
    bridge: &Bridge,
    app: &str,
    login: &StartedLogin,
    edit: impl FnOnce(entree_bridge::demo::idp::ResponseSpec) -> entree_bridge::demo::idp::ResponseSpec,
) -> reqwest::Response {
    let spec = edit(bridge.spec(app, Some(&login.request_id)));
    let xml = bridge.idp.response(&spec).expect("sign");
    super::post_acs_response(client, bridge, app, &xml, Some(&login.relay_state)).await
}

/// A whole login of `client_id` (of `app`) in `browser` through the dev IdP, then the code
/// redeemed with `auth`: the token answer's JSON.
pub async fn log_in_and_redeem(
    browser: &reqwest::Client,
    bridge: &Bridge,
    app: &str,
    auth: ClientAuth<'_>,
    redirect_uri: &str,
) -> serde_json::Value {
    let client_id = match auth {
        ClientAuth::Basic(id, _) | ClientAuth::Post(id, _) | ClientAuth::Public(id) => id,
    };
    let pkce = Pkce::new();
    let authorize = authorize_url(bridge, client_id, redirect_uri, &pkce, "");
    let callback = authorize_through_dev_idp(browser, bridge, app, &authorize).await;
    let code = query_param(&callback, "code").expect("code");
    let resp = redeem(bridge, auth, &code, redirect_uri, &pkce.verifier).await;
    assert_eq!(resp.status(), 200, "tokens");
    resp.json().await.expect("json")
}

/// GETs `url` in `browser` (redirects not followed).
pub async fn get(browser: &reqwest::Client, url: &str) -> reqwest::Response {
    browser.get(url).send().await.expect("get")
}

/// The Location of a 302 answer (asserting it is one).
pub fn location_of(resp: &reqwest::Response) -> String {
    assert_eq!(resp.status(), 302, "a redirect: {:?}", resp.headers());
    resp.headers()["location"].to_str().expect("location").to_string()
}
