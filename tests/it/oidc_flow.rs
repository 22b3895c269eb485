//! oidc mode end to end with the development IdP: the bridge as an OpenID Connect provider,
//! the code flow with PKCE, the tokens and userinfo.

use crate::common;

use common::oidc::*;
use common::*;
use serde_json::Value;

/// The claims of a JWT (not verified: these tests check what the bridge put in it; the
/// relying-party tests verify signatures with real client libraries).
fn claims_of(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).expect("claims part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

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
