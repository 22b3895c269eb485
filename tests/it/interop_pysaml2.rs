//! Interop with an independent SAML implementation: pysaml2's IdP (`saml2.server.Server.
//! create_authn_response`, signing through Debian's xmlsec1) answers the bridge's real
//! AuthnRequest, reading the bridge's real SP metadata, and the bridge must accept it.

use crate::common;

use common::pysaml2::*;
use common::*;

/// Runs a login answered by pysaml2 and returns the ACS outcome.
async fn login_through_pysaml2(extra_flags: &[&str]) -> AcsOutcome {
    let idp = PyIdp::new();
    let bridge = Bridge::start_custom("", |dir| idp.install(dir)).await;
    assert_eq!(
        bridge.settings.federations["kennisnet"]
            .metadata_at_load()
            .expect("metadata")
            .entity_id,
        PY_IDP
    );

    let client = client();
    let login = start_login(&client, &bridge, "numo", None).await;
    let b64 = idp.respond(&bridge, "numo", &login.request_id, extra_flags).await;
    let form = [
        ("SAMLResponse", b64.as_str()),
        ("RelayState", login.relay_state.as_str()),
    ];
    let resp = client.post(bridge.acs("numo")).form(&form).send().await.expect("acs");
    let outcome = AcsOutcome {
        status: resp.status().as_u16(),
        body: resp.text().await.expect("body"),
    };
    outcome
}

async fn accepted_from_pysaml2(extra_flags: &[&str]) {
    let outcome = login_through_pysaml2(extra_flags).await;
    assert_eq!(
        outcome.status, 200,
        "pysaml2's response {extra_flags:?} was refused: {}",
        outcome.body
    );
    let token = outcome.token().expect("hand-off token");
    let payload = token.split('.').nth(1).expect("payload");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).expect("b64"),
    )
    .expect("json");
    assert_eq!(claims["sub"], "100231");
    assert_eq!(claims["school"], "99XX");
    assert_eq!(claims["given_name"], "Sanne");
}

#[tokio::test]
async fn pysaml2_signed_assertion_is_accepted() {
    accepted_from_pysaml2(&[]).await;
}

#[tokio::test]
async fn pysaml2_signed_response_is_accepted() {
    accepted_from_pysaml2(&["--sign-response"]).await;
}

#[tokio::test]
async fn pysaml2_encrypted_assertion_in_a_signed_response_is_accepted() {
    // pysaml2 encrypts with aes256-cbc and rsa-oaep-mgf1p; the signed Response authenticates it.
    accepted_from_pysaml2(&["--sign-response", "--encrypt-assertion"]).await;
}

#[tokio::test]
async fn pysaml2_cbc_encryption_in_an_unsigned_response_is_refused() {
    let outcome = login_through_pysaml2(&["--sign-assertion", "--encrypt-assertion"]).await;
    outcome.assert_rejected(400, "encryption_algorithm_forbidden");
}
