//! oidc mode end to end with the development IdP: the bridge as an OpenID Connect provider,
//! the code flow with PKCE, the tokens and userinfo; a real relying party (the `openidconnect`
//! crate); the refusals a conformant OP makes; OP sessions; first-time linking.
//! Logout (RP-initiated and back-channel) is in `oidc_logout`.

use crate::common;

use common::oidc::*;
use common::*;
use serde_json::Value;

#[tokio::test]
async fn a_code_flow_with_pkce_ends_in_an_id_token_and_userinfo_for_the_person_code() {
    let bridge = Bridge::start_oidc("").await;
    let browser = client();
    let pkce = Pkce::new();
    let authorize = authorize_url(&bridge, CLIENT_ID, REDIRECT_URI, &pkce, "");
    let callback = authorize_through_dev_idp(&browser, &bridge, "portal", &authorize).await;
    assert!(callback.starts_with(REDIRECT_URI), "{callback}");
    assert_eq!(query_param(&callback, "state").as_deref(), Some("state-1"));
    assert_eq!(query_param(&callback, "iss").as_deref(), Some(bridge.base.as_str()));
    let code = query_param(&callback, "code").expect("code");

    let resp = redeem(
        &bridge,
        ClientAuth::Basic(CLIENT_ID, CLIENT_SECRET),
        &code,
        REDIRECT_URI,
        &pkce.verifier,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let tokens: Value = resp.json().await.expect("json");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 300);
    let id = claims_of(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(id["iss"], bridge.base.as_str());
    assert_eq!(id["aud"], CLIENT_ID);
    assert_eq!(id["sub"], "100231");
    assert_eq!(id["nonce"], "nonce-1");
    assert_eq!(id["school"], "99XX");
    assert_eq!(id["tenant"], "ingang-a");
    assert_eq!(id["given_name"], "Sanne");
    assert!(id["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(id["auth_time"].as_i64().is_some());

    let userinfo = reqwest::Client::new()
        .get(format!("{}/oidc/userinfo", bridge.base))
        .bearer_auth(tokens["access_token"].as_str().expect("access_token"))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(userinfo.status(), 200);
    let info: Value = userinfo.json().await.expect("json");
    assert_eq!(info["sub"], "100231");
    assert_eq!(info["school"], "99XX");

    // The code was redeemed: a second time is invalid_grant.
    let again = redeem(
        &bridge,
        ClientAuth::Basic(CLIENT_ID, CLIENT_SECRET),
        &code,
        REDIRECT_URI,
        &pkce.verifier,
    )
    .await;
    assert_eq!(again.status(), 400);
    let err: Value = again.json().await.expect("json");
    assert_eq!(err["error"], "invalid_grant");
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// An authorization request's query pairs.
type Pairs = Vec<(&'static str, String)>;

/// The pairs of a valid authorization request of the portal; tests change one thing.
fn valid_request(pkce: &Pkce) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", CLIENT_ID.into()),
        ("redirect_uri", REDIRECT_URI.into()),
        ("scope", "openid".into()),
        ("state", "state-1".into()),
        ("nonce", "nonce-1".into()),
        ("code_challenge", pkce.challenge.clone()),
        ("code_challenge_method", "S256".into()),
    ]
}

fn authorize_with(bridge: &Bridge, pairs: &[(&str, String)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    format!("{}/oidc/authorize?{}", bridge.base, q.finish())
}

/// `pairs` with `name` set to `value` (removed when `None`).
fn with(
    mut pairs: Vec<(&'static str, String)>,
    name: &'static str,
    value: Option<&str>,
) -> Vec<(&'static str, String)> {
    pairs.retain(|(k, _)| *k != name);
    if let Some(v) = value {
        pairs.push((name, v.to_string()));
    }
    pairs
}

/// Asserts an error page with `code` and no redirect anywhere.
async fn assert_page(resp: reqwest::Response, status: u16, code: &str) {
    assert_eq!(resp.status(), status, "{code}");
    assert!(resp.headers().get("location").is_none(), "no redirect for {code}");
    assert!(
        resp.headers().get("set-cookie").is_none(),
        "no login started for {code}"
    );
    let body = resp.text().await.expect("body");
    assert!(body.contains(&format!("<code>{code}</code>")), "{code}: {body}");
}

/// Asserts a redirect to the portal's redirect_uri with `error`, the state and iss, and
/// nothing else issued (no code, no login started).
fn assert_redirected_error(bridge: &Bridge, resp: &reqwest::Response, error: &str, what: &str) {
    let location = location_of(resp);
    assert!(!location.is_empty(), "{what}");
    assert!(location.starts_with(&format!("{REDIRECT_URI}?")), "{location}");
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some(error),
        "{what}: {location}"
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("state-1"));
    assert_eq!(query_param(&location, "iss").as_deref(), Some(bridge.base.as_str()));
    assert!(query_param(&location, "code").is_none());
    assert!(
        resp.headers().get("set-cookie").is_none(),
        "no login started for {error}"
    );
}

async fn token_error(resp: reqwest::Response) -> (u16, String, Option<String>) {
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ascii").to_string());
    let body: Value = resp.json().await.expect("json");
    (status, body["error"].as_str().expect("error").to_string(), challenge)
}

/// A portal code issued in `browser` and its verifier.
async fn portal_code(browser: &reqwest::Client, bridge: &Bridge, extra: &str) -> (String, Pkce) {
    let pkce = Pkce::new();
    let authorize = authorize_url(bridge, CLIENT_ID, REDIRECT_URI, &pkce, extra);
    let callback = authorize_through_dev_idp(browser, bridge, "portal", &authorize).await;
    (query_param(&callback, "code").expect("code"), pkce)
}

/// A portal code from the browser's OP session (no IdP) for `extra`.
async fn code_from_session(browser: &reqwest::Client, bridge: &Bridge, extra: &str) -> (String, Pkce) {
    let pkce = Pkce::new();
    let location = location_of(&get(browser, &authorize_url(bridge, CLIENT_ID, REDIRECT_URI, &pkce, extra)).await);
    assert!(
        location.starts_with(&format!("{REDIRECT_URI}?code=")),
        "at once, without the IdP: {location}"
    );
    (query_param(&location, "code").expect("code"), pkce)
}

async fn id_token_of(bridge: &Bridge, code: &str, pkce: &Pkce) -> Value {
    let resp = redeem(
        bridge,
        ClientAuth::Basic(CLIENT_ID, CLIENT_SECRET),
        code,
        REDIRECT_URI,
        &pkce.verifier,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let tokens: Value = resp.json().await.expect("json");
    claims_of(tokens["id_token"].as_str().expect("id_token"))
}

// ---------------------------------------------------------------------------------------
// A real relying party: the `openidconnect` crate
// ---------------------------------------------------------------------------------------

mod rp {
    use super::*;
    use openidconnect::core::{
        CoreClient, CoreGenderClaim, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreResponseType,
    };
    use openidconnect::{
        AdditionalClaims, Audience, AuthType, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
        IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, TokenResponse, UserInfoClaims,
    };

    #[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
    struct School {
        school: String,
    }
    impl AdditionalClaims for School {}

    async fn sign_in(app: &str, client_id: &str, secret: Option<&str>, auth: AuthType, redirect_uri: &str, sub: &str) {
        sign_in_with(app, client_id, secret, auth, redirect_uri, sub, None).await
    }

    /// [`sign_in`] with `es256`: the client registered for ES256 id_tokens, the library told to
    /// expect them.
    async fn sign_in_with(
        app: &str,
        client_id: &str,
        secret: Option<&str>,
        auth: AuthType,
        redirect_uri: &str,
        sub: &str,
        es256: Option<&str>,
    ) {
        let bridge = Bridge::start_oidc(es256.unwrap_or("")).await;
        let browser = client();
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        let issuer = IssuerUrl::new(bridge.base.clone()).expect("issuer");
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .expect("discovery (issuer equality, JWKS)");
        assert_eq!(metadata.issuer().as_str(), bridge.base, "no trailing slash");
        let rp = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(client_id.into()),
            secret.map(|s| ClientSecret::new(s.into())),
        )
        .set_redirect_uri(RedirectUrl::new(redirect_uri.into()).expect("redirect"))
        .set_auth_type(auth);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, csrf, nonce) = rp
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge)
            .url();

        let callback = authorize_through_dev_idp(&browser, &bridge, app, url.as_str()).await;
        assert!(callback.starts_with(&format!("{redirect_uri}?")), "{callback}");
        assert_eq!(query_param(&callback, "state").as_deref(), Some(csrf.secret().as_str()));
        assert_eq!(query_param(&callback, "iss").as_deref(), Some(bridge.base.as_str()));
        let code = AuthorizationCode::new(query_param(&callback, "code").expect("code"));

        let tokens = rp
            .exchange_code(code)
            .expect("token endpoint")
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .expect("token response");
        let id_token = tokens.id_token().expect("id_token");
        // Signature (JWKS), iss, aud, nonce, exp: the library's checks.
        let verifier = match es256 {
            None => rp.id_token_verifier(),
            Some(_) => {
                let header = header_of(&id_token.to_string());
                assert_eq!(header["alg"], "ES256");
                let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", bridge.base))
                    .await
                    .expect("jwks")
                    .json()
                    .await
                    .expect("json");
                let key = jwks["keys"]
                    .as_array()
                    .expect("keys")
                    .iter()
                    .find(|k| k["kid"] == header["kid"]);
                assert_eq!(key.expect("its key is published")["kty"], "EC");
                rp.id_token_verifier()
                    .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256])
            }
        };
        let claims = id_token.claims(&verifier, &nonce).expect("a valid id_token");
        assert_eq!(claims.subject().as_str(), sub);
        assert_eq!(claims.issuer().as_str(), bridge.base);
        assert_eq!(claims.audiences(), &[Audience::new(client_id.into())]);
        assert_eq!(claims_of(&id_token.to_string())["school"], "99XX");
        // Another nonce is refused by the same library: the check is real.
        assert!(id_token.claims(&verifier, &Nonce::new("other".into())).is_err());

        let info: UserInfoClaims<School, CoreGenderClaim> = rp
            .user_info(tokens.access_token().clone(), None)
            .expect("userinfo endpoint")
            .request_async(&http)
            .await
            .expect("userinfo");
        assert_eq!(info.subject().as_str(), sub);
        assert_eq!(info.additional_claims().school, "99XX");
    }

    #[tokio::test]
    async fn the_confidential_client_signs_in_with_client_secret_basic() {
        sign_in(
            "portal",
            CLIENT_ID,
            Some(CLIENT_SECRET),
            AuthType::BasicAuth,
            REDIRECT_URI,
            "100231",
        )
        .await;
    }

    #[tokio::test]
    async fn the_confidential_client_signs_in_with_client_secret_post() {
        sign_in(
            "portal",
            CLIENT_ID,
            Some(CLIENT_SECRET),
            AuthType::RequestBody,
            REDIRECT_URI,
            "100231",
        )
        .await;
    }

    /// `id_token_signed_response_alg = "ES256"`: the id_token signed with the EC key (a
    /// twentieth of RS256's CPU), and advertised in discovery.
    #[tokio::test]
    async fn a_client_registered_for_es256_gets_es256_id_tokens() {
        let fast = OIDC_APPS
            .split("[apps.spa]")
            .next()
            .expect("portal")
            .replace("[apps.portal", "[apps.fast")
            .replace("/portal", "/fast")
            .replace("portal-web", "fast-web")
            .replace(
                "token_lifetime = \"5m\"",
                "token_lifetime = \"5m\"\nid_token_signed_response_alg = \"ES256\"",
            );
        sign_in_with(
            "fast",
            "fast-web",
            Some(CLIENT_SECRET),
            AuthType::BasicAuth,
            "http://localhost/fast/cb",
            "100231",
            Some(&fast),
        )
        .await;
    }

    #[tokio::test]
    async fn the_public_client_signs_in_with_pkce_alone() {
        // spa has no person-code pattern: its sub is the attribute's whole value.
        let sub = "100231@school-a.nl";
        sign_in(
            "spa",
            PUBLIC_CLIENT_ID,
            None,
            AuthType::RequestBody,
            PUBLIC_REDIRECT_URI,
            sub,
        )
        .await;
    }
}

// ---------------------------------------------------------------------------------------
// Refusals at the authorization endpoint
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_client_or_an_unregistered_redirect_uri_gets_a_page_never_a_redirect() {
    let bridge = Bridge::start_oidc("").await;
    let browser = client();
    let pkce = Pkce::new();
    let unknown = with(valid_request(&pkce), "client_id", Some("nobody"));
    assert_page(
        get(&browser, &authorize_with(&bridge, &unknown)).await,
        400,
        "oidc_unknown_client",
    )
    .await;
    for uri in [
        "https://evil.example/cb",
        "http://localhost/portal/cb/",
        "http://localhost/portal/cb?x=1",
        "http://localhost/portal/cbx",
        "http://localhost:80/portal/cb",
        "http://LOCALHOST/portal/cb",
        "http://localhost/portal/cb#f",
        PUBLIC_REDIRECT_URI,
    ] {
        let pairs = with(valid_request(&pkce), "redirect_uri", Some(uri));
        let resp = get(&browser, &authorize_with(&bridge, &pairs)).await;
        assert_page(resp, 400, "oidc_redirect_uri_not_registered").await;
    }
    let missing = with(valid_request(&pkce), "redirect_uri", None);
    assert_page(
        get(&browser, &authorize_with(&bridge, &missing)).await,
        400,
        "oidc_redirect_uri_not_registered",
    )
    .await;
}

#[tokio::test]
async fn bad_authorization_requests_go_back_to_the_client_with_the_exact_error() {
    let bridge = Bridge::start_oidc("").await;
    let browser = client();
    let pkce = Pkce::new();
    let cases: Vec<(&str, Pairs, &str)> = vec![
        (
            "no PKCE",
            with(
                with(valid_request(&pkce), "code_challenge", None),
                "code_challenge_method",
                None,
            ),
            "invalid_request",
        ),
        (
            "PKCE plain",
            with(
                with(valid_request(&pkce), "code_challenge", Some(&pkce.verifier)),
                "code_challenge_method",
                Some("plain"),
            ),
            "invalid_request",
        ),
        (
            "no method",
            with(valid_request(&pkce), "code_challenge_method", None),
            "invalid_request",
        ),
        (
            "implicit",
            with(valid_request(&pkce), "response_type", Some("token")),
            "unsupported_response_type",
        ),
        (
            "hybrid",
            with(valid_request(&pkce), "response_type", Some("code id_token")),
            "unsupported_response_type",
        ),
        (
            "no openid",
            with(valid_request(&pkce), "scope", Some("profile")),
            "invalid_scope",
        ),
        (
            "request object",
            with(valid_request(&pkce), "request", Some("eyJ.e30.")),
            "request_not_supported",
        ),
    ];
    for (what, pairs, error) in cases {
        let resp = get(&browser, &authorize_with(&bridge, &pairs)).await;
        assert_redirected_error(&bridge, &resp, error, what);
    }
}

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required_and_starts_nothing() {
    let bridge = Bridge::start_oidc("").await;
    let browser = client();
    let resp = get(
        &browser,
        &authorize_url(&bridge, CLIENT_ID, REDIRECT_URI, &Pkce::new(), "&prompt=none"),
    )
    .await;
    // No pending login either: a login starts with its RelayState cookie, and none is set.
    assert_redirected_error(&bridge, &resp, "login_required", "prompt=none");
}

// ---------------------------------------------------------------------------------------
// Refusals at the token endpoint
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_wrong_verifier_a_wrong_redirect_uri_and_a_reused_code_are_invalid_grant_and_burn_the_code() {
    let bridge = Bridge::start_oidc("").await;
    let browser = client();
    let auth = ClientAuth::Basic(CLIENT_ID, CLIENT_SECRET);

    let (code, pkce) = portal_code(&browser, &bridge, "").await;
    let wrong = redeem(&bridge, auth, &code, REDIRECT_URI, &Pkce::new().verifier).await;
    assert_eq!(token_error(wrong).await, (400, "invalid_grant".into(), None));
    let burned = redeem(&bridge, auth, &code, REDIRECT_URI, &pkce.verifier).await;
    assert_eq!(
        token_error(burned).await.1,
        "invalid_grant",
        "a failed try burns the code"
    );

    let (code, pkce) = code_from_session(&browser, &bridge, "").await;
    let elsewhere = redeem(&bridge, auth, &code, "http://localhost/portal/other", &pkce.verifier).await;
    assert_eq!(token_error(elsewhere).await.1, "invalid_grant");
    let burned = redeem(&bridge, auth, &code, REDIRECT_URI, &pkce.verifier).await;
    assert_eq!(token_error(burned).await.1, "invalid_grant");

    let (code, pkce) = code_from_session(&browser, &bridge, "").await;
    assert_eq!(
        redeem(&bridge, auth, &code, REDIRECT_URI, &pkce.verifier)
            .await
            .status(),
        200
    );
    let reused = redeem(&bridge, auth, &code, REDIRECT_URI, &pkce.verifier).await;
    assert_eq!(token_error(reused).await.1, "invalid_grant");
}

#[tokio::test]
async fn a_code_of_another_client_is_invalid_grant_and_then_burned() {
    let bridge = Bridge::start_oidc("").await;
    let (code, pkce) = portal_code(&client(), &bridge, "").await;
    let as_spa = redeem(
        &bridge,
        ClientAuth::Public(PUBLIC_CLIENT_ID),
        &code,
        REDIRECT_URI,
        &pkce.verifier,
    )
    .await;
    assert_eq!(token_error(as_spa).await.1, "invalid_grant");
    let owner = redeem(
        &bridge,
        ClientAuth::Basic(CLIENT_ID, CLIENT_SECRET),
        &code,
        REDIRECT_URI,
        &pkce.verifier,
    )
    .await;
    assert_eq!(
        token_error(owner).await.1,
        "invalid_grant",
        "the stolen code is gone for everyone"
    );
}

#[tokio::test]
async fn a_failed_client_authentication_is_401_and_leaves_the_code_alone() {
    let bridge = Bridge::start_oidc("").await;
    let (code, pkce) = portal_code(&client(), &bridge, "").await;
    let wrong = redeem(
        &bridge,
        ClientAuth::Basic(CLIENT_ID, "not-the-secret-0123456789-abcdefghijk"),
        &code,
        REDIRECT_URI,
        &pkce.verifier,
    )
    .await;
    let (status, error, challenge) = token_error(wrong).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert!(
        challenge.is_some_and(|c| c.starts_with("Basic")),
        "WWW-Authenticate in kind"
    );
    let wrong_post = redeem(
        &bridge,
        ClientAuth::Post(CLIENT_ID, "nope"),
        &code,
        REDIRECT_URI,
        &pkce.verifier,
    )
    .await;
    let (status, error, challenge) = token_error(wrong_post).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert!(challenge.is_some());
    let no_secret = redeem(
        &bridge,
        ClientAuth::Public(CLIENT_ID),
        &code,
        REDIRECT_URI,
        &pkce.verifier,
    )
    .await;
    let (status, error, challenge) = token_error(no_secret).await;
    assert_eq!(
        (status, error.as_str()),
        (401, "invalid_client"),
        "a confidential client must authenticate"
    );
    assert!(challenge.is_some());
    // An unauthenticated request never touched the code.
    let right = redeem(
        &bridge,
        ClientAuth::Basic(CLIENT_ID, CLIENT_SECRET),
        &code,
        REDIRECT_URI,
        &pkce.verifier,
    )
    .await;
    assert_eq!(right.status(), 200);
}

#[tokio::test]
async fn a_code_lives_sixty_seconds_and_an_expired_one_is_invalid_grant() {
    use entree_bridge::handoff::oidc::tokens::storage_key;
    let bridge = Bridge::start_oidc("").await;
    let (code, pkce) = portal_code(&client(), &bridge, "").await;
    // Waiting 60 s is too slow: read the grant from the store, check its expiry, and put it
    // back as if the minute had passed.
    let mut grant = bridge
        .store
        .take_code(&storage_key(&code))
        .await
        .expect("store")
        .expect("grant");
    let left = grant
        .expires_at
        .duration_since(std::time::SystemTime::now())
        .expect("in the future");
    assert!(
        left <= std::time::Duration::from_secs(60) && left > std::time::Duration::from_secs(50),
        "{left:?}"
    );
    grant.expires_at = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
    bridge.store.put_code(&storage_key(&code), grant).await.expect("store");
    let expired = redeem(
        &bridge,
        ClientAuth::Basic(CLIENT_ID, CLIENT_SECRET),
        &code,
        REDIRECT_URI,
        &pkce.verifier,
    )
    .await;
    assert_eq!(token_error(expired).await.1, "invalid_grant");
}

// ---------------------------------------------------------------------------------------
// OP sessions
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_second_authorization_in_the_same_browser_gets_a_code_at_once_with_the_same_sid() {
    let bridge = Bridge::start_oidc("").await;
    let browser = client();
    let (code, pkce) = portal_code(&browser, &bridge, "").await;
    let first = id_token_of(&bridge, &code, &pkce).await;
    let (code, pkce) = code_from_session(&browser, &bridge, "").await;
    let second = id_token_of(&bridge, &code, &pkce).await;
    let (code, pkce) = code_from_session(&browser, &bridge, "&prompt=none").await;
    let third = id_token_of(&bridge, &code, &pkce).await;
    assert_eq!(first["sid"], second["sid"]);
    assert_eq!(first["sid"], third["sid"]);
    assert_eq!(first["auth_time"], third["auth_time"], "the same login");
    assert_eq!(third["sub"], "100231");

    // Another browser has no session: to the IdP.
    start_authorization(
        &client(),
        &authorize_url(&bridge, CLIENT_ID, REDIRECT_URI, &Pkce::new(), ""),
    )
    .await;

    // prompt=login: to the IdP with ForceAuthn; the new login is a new session.
    let pkce = Pkce::new();
    let login = start_authorization(
        &browser,
        &authorize_url(&bridge, CLIENT_ID, REDIRECT_URI, &pkce, "&prompt=login"),
    )
    .await;
    assert!(login.force_authn, "prompt=login asks the IdP for a fresh login");
    let callback = answer_at_acs(&browser, &bridge, "portal", &login).await;
    let fresh = id_token_of(&bridge, &query_param(&callback, "code").expect("code"), &pkce).await;
    assert_ne!(fresh["sid"], first["sid"], "a new login, a new sid");
    let (code, pkce) = code_from_session(&browser, &bridge, "").await;
    assert_eq!(id_token_of(&bridge, &code, &pkce).await["sid"], fresh["sid"]);
}

#[tokio::test]
async fn max_age_zero_always_goes_back_to_the_idp_for_a_fresh_login() {
    let bridge = Bridge::start_oidc("").await;
    let browser = client();
    portal_code(&browser, &bridge, "").await;
    let login = start_authorization(
        &browser,
        &authorize_url(&bridge, CLIENT_ID, REDIRECT_URI, &Pkce::new(), "&max_age=0"),
    )
    .await;
    assert!(
        login.force_authn,
        "max_age exceeded: the OP must actively re-authenticate"
    );
    // Without a session, a max_age also asks for a fresh login (the IdP's own session may
    // be older); a generous max_age is answered from a session.
    let other = start_authorization(
        &client(),
        &authorize_url(&bridge, CLIENT_ID, REDIRECT_URI, &Pkce::new(), "&max_age=3600"),
    )
    .await;
    assert!(other.force_authn);
    code_from_session(&browser, &bridge, "&max_age=3600").await;
}

/// `auth_time` is when the IdP authenticated the student (its AuthnInstant), not when the
/// bridge heard of it; and `max_age` reads that time: an IdP login of an hour ago is too old
/// for `max_age=600` although the bridge's session is new.
#[tokio::test]
async fn auth_time_is_the_idps_authn_instant_and_max_age_reads_it() {
    let bridge = Bridge::start_oidc("").await;
    let browser = client();
    let an_hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    let pkce = Pkce::new();
    let login = start_authorization(&browser, &authorize_url(&bridge, CLIENT_ID, REDIRECT_URI, &pkce, "")).await;
    let resp = answer_at_acs_with(&browser, &bridge, "portal", &login, |mut spec| {
        spec.authn_instant = Some(an_hour_ago);
        spec
    })
    .await;
    let code = query_param(&location_of(&resp), "code").expect("code");
    let id = id_token_of(&bridge, &code, &pkce).await;
    assert_eq!(id["auth_time"], an_hour_ago.timestamp());
    let again = start_authorization(
        &browser,
        &authorize_url(&bridge, CLIENT_ID, REDIRECT_URI, &Pkce::new(), "&max_age=600"),
    )
    .await;
    assert!(again.force_authn, "the IdP's login is older than max_age");
}

/// A forced login (`prompt=login`) that the IdP answers from an older authentication is
/// refused (`authn_not_fresh`), and no code goes to the client.
#[tokio::test]
async fn a_forced_login_answered_with_an_old_authentication_is_refused() {
    let bridge = Bridge::start_oidc("").await;
    let browser = client();
    let login = start_authorization(
        &browser,
        &authorize_url(&bridge, CLIENT_ID, REDIRECT_URI, &Pkce::new(), "&prompt=login"),
    )
    .await;
    assert!(login.force_authn);
    let resp = answer_at_acs_with(&browser, &bridge, "portal", &login, |mut spec| {
        spec.authn_instant = Some(chrono::Utc::now() - chrono::Duration::minutes(30));
        spec
    })
    .await;
    assert!(resp.headers().get("location").is_none(), "nothing goes to the client");
    assert_eq!(resp.status(), 400);
    let page = resp.text().await.expect("page");
    assert!(page.contains("<code>authn_not_fresh</code>"), "{page}");
    // Within the clock skew (2 minutes) a fresh login passes.
    let login = start_authorization(
        &browser,
        &authorize_url(&bridge, CLIENT_ID, REDIRECT_URI, &Pkce::new(), "&prompt=login"),
    )
    .await;
    let resp = answer_at_acs_with(&browser, &bridge, "portal", &login, |mut spec| {
        spec.authn_instant = Some(chrono::Utc::now() - chrono::Duration::seconds(30));
        spec
    })
    .await;
    assert!(query_param(&location_of(&resp), "code").is_some());
}

#[tokio::test]
async fn an_elo_link_login_ends_at_the_target_with_an_op_session() {
    let bridge = Bridge::start_oidc("").await;
    let browser = client();
    let login = start_login(&browser, &bridge, "portal", Some("http://localhost/portal/app")).await;
    let resp = answer_at_acs_with(&browser, &bridge, "portal", &login, |s| s).await;
    assert!(resp.headers().get("set-cookie").is_some(), "the OP session cookie");
    assert_eq!(location_of(&resp), "http://localhost/portal/app");
    let (code, pkce) = code_from_session(&browser, &bridge, "&prompt=none").await;
    assert_eq!(id_token_of(&bridge, &code, &pkce).await["sub"], "100231");
}

// ---------------------------------------------------------------------------------------
// First-time linking
// ---------------------------------------------------------------------------------------

const LINK_SECRET: &str = "a-link-secret-shared-with-the-app-0123456789";
const LINK_URL: &str = "https://app.example.nl/entree/link";
const LINKED_REDIRECT: &str = "http://localhost/linked/cb";

#[tokio::test]
async fn with_linking_the_code_comes_after_the_link_and_names_the_linked_person() {
    let bridge = Bridge::start_oidc(&format!(
        r#"
[apps.linked]
federation = "kennisnet"
base_url = "http://127.0.0.1:{{port}}/linked"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
[apps.linked.person]
attribute = "nlEduPersonRealId"
linking = true
link_url = "{LINK_URL}"
link_secret = "{LINK_SECRET}"
[apps.linked.handoff]
mode = "oidc"
redirect_uris = ["{LINKED_REDIRECT}"]
"#
    ))
    .await;
    let browser = client();
    let pkce = Pkce::new();
    let login = start_authorization(&browser, &authorize_url(&bridge, "linked", LINKED_REDIRECT, &pkce, "")).await;
    let resp = answer_at_acs_with(&browser, &bridge, "linked", &login, |s| s).await;
    let to_link = location_of(&resp);
    assert!(
        to_link.starts_with(&format!("{LINK_URL}?link_request=")),
        "first the link: {to_link}"
    );
    let request = claims_of(&query_param(&to_link, "link_request").expect("link_request"));
    let response = entree_bridge::demo::tokens::sign_hs256(
        LINK_SECRET.as_bytes(),
        &serde_json::json!({"aud": bridge.base, "jti": request["jti"], "sub": "P-77",
            "exp": chrono::Utc::now().timestamp() + 120}),
    )
    .expect("sign");
    let done = get(
        &browser,
        &format!(
            "{}/linked/saml2/kennisnet/link/complete?link_response={response}",
            bridge.base
        ),
    )
    .await;
    let callback = location_of(&done);
    assert!(callback.starts_with(&format!("{LINKED_REDIRECT}?code=")), "{callback}");
    assert_eq!(query_param(&callback, "state").as_deref(), Some("state-1"));
    let code = query_param(&callback, "code").expect("code");
    let tokens = redeem(
        &bridge,
        ClientAuth::Public("linked"),
        &code,
        LINKED_REDIRECT,
        &pkce.verifier,
    )
    .await;
    assert_eq!(tokens.status(), 200);
    let tokens: Value = tokens.json().await.expect("json");
    assert_eq!(claims_of(tokens["id_token"].as_str().expect("id_token"))["sub"], "P-77");
}

/// OIDC Core 3.1.2.1: the authorization endpoint takes POST with the same parameters.
#[tokio::test]
async fn an_authorization_request_may_be_posted() {
    let bridge = Bridge::start_oidc("").await;
    let browser = client();
    let pkce = Pkce::new();
    let resp = browser
        .post(format!("{}/oidc/authorize", bridge.base))
        .form(&valid_request(&pkce))
        .send()
        .await
        .expect("post");
    let login = started_login_from(location_of(&resp));
    let callback = answer_at_acs(&browser, &bridge, "portal", &login).await;
    let code = query_param(&callback, "code").expect("code");
    assert_eq!(id_token_of(&bridge, &code, &pkce).await["sub"], "100231");
}
