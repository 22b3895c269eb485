//! Interop with an independent SAML implementation: pysaml2's IdP (`saml2.server.Server.
//! create_authn_response`, signing through Debian's xmlsec1) answers the bridge's real
//! AuthnRequest, reading the bridge's real SP metadata, and the bridge must accept it.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const PY_IDP: &str = "https://pysaml2-idp.test.invalid/idp";

fn venv_python() -> PathBuf {
    let setup = repo_root().join("tests/interop/setup-venv.sh");
    let out = Command::new("bash").arg(&setup).output().expect("run setup-venv.sh");
    assert!(
        out.status.success(),
        "the interop venv could not be set up (run tests/interop/setup-venv.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().last().expect("python path").trim())
}

fn pysaml2(python: &Path, args: &[&str]) -> String {
    let out = Command::new(python)
        .arg(repo_root().join("tests/interop/pysaml2_idp.py"))
        .args(args)
        .output()
        .expect("run pysaml2_idp.py");
    assert!(
        out.status.success(),
        "pysaml2 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// Runs a login answered by pysaml2 and returns the ACS outcome.
async fn login_through_pysaml2(extra_flags: &[&str]) -> AcsOutcome {
    let python = venv_python();
    let keys = tempfile::tempdir().expect("dir");
    let key = keys.path().join("idp.key").display().to_string();
    let cert = keys.path().join("idp.crt").display().to_string();
    let metadata = pysaml2(
        &python,
        &[
            "metadata",
            "--entity-id",
            PY_IDP,
            "--sso-url",
            "https://pysaml2-idp.test.invalid/sso",
            "--key",
            &key,
            "--cert",
            &cert,
        ],
    );
    let bridge = Bridge::start_custom("", |dir| {
        std::fs::write(dir.join("idp-metadata.xml"), &metadata).expect("write metadata")
    })
    .await;
    assert_eq!(
        bridge.settings.federations["kennisnet"]
            .metadata_at_load()
            .expect("metadata")
            .entity_id,
        PY_IDP
    );

    let client = client();
    let sp_metadata = client
        .get(format!("{}/numo/saml2/kennisnet/metadata", bridge.base))
        .send()
        .await
        .expect("metadata")
        .text()
        .await
        .expect("body");
    let sp_metadata_path = bridge.path("sp-metadata.xml");
    std::fs::write(&sp_metadata_path, sp_metadata).expect("write");

    let login = start_login(&client, &bridge, "numo", None).await;
    let (acs, sp) = (bridge.acs("numo"), bridge.sp_entity_id("numo"));
    let mut args = vec![
        "respond",
        "--entity-id",
        PY_IDP,
        "--key",
        &key,
        "--cert",
        &cert,
        "--sp-metadata",
        sp_metadata_path.to_str().expect("path"),
        "--acs-url",
        &acs,
        "--sp-entity-id",
        &sp,
        "--in-response-to",
        &login.request_id,
        "--name-id",
        "pysaml2-subject",
        "--attr",
        "nlEduPersonRealId=100231@school-a.nl",
        "--attr",
        "nlEduPersonHomeOrganizationId=99XX",
        "--attr",
        "eduPersonAffiliation=student",
        "--attr",
        "givenName=Sanne",
    ];
    args.extend_from_slice(extra_flags);
    let b64 = pysaml2(&python, &args);
    let form = [("SAMLResponse", b64.trim()), ("RelayState", login.relay_state.as_str())];
    let resp = client.post(&acs).form(&form).send().await.expect("acs");
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
