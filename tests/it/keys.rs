//! JWT key rollover: `keygen` writes a new key; listed first it signs, and the old key stays
//! published so tokens already in flight keep verifying.

use crate::common;

use std::process::Command;

use common::*;
use jsonwebtoken::{decode, decode_header, jwk::JwkSet, DecodingKey, Validation};

fn verify(token: &str, jwks_json: &str) -> Result<serde_json::Value, String> {
    let jwks: JwkSet = serde_json::from_str(jwks_json).map_err(|e| e.to_string())?;
    let header = decode_header(token).map_err(|e| e.to_string())?;
    let jwk = jwks.find(&header.kid.ok_or("no kid")?).ok_or("kid not published")?;
    let mut validation = Validation::new(header.alg);
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    decode::<serde_json::Value>(
        token,
        &DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?,
        &validation,
    )
    .map(|d| d.claims)
    .map_err(|e| e.to_string())
}

#[test]
fn a_new_key_signs_and_the_old_one_stays_published() {
    let (dir, _idp, _) = prepare_dir();
    let new_key = dir.path().join("jwt-next.pem");
    let out = Command::new(env!("CARGO_BIN_EXE_entree-bridge"))
        .args(["keygen", "--type", "rsa", "--out"])
        .arg(&new_key)
        .output()
        .expect("keygen");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&new_key).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a private key is readable by its owner only");
    }
    let again = Command::new(env!("CARGO_BIN_EXE_entree-bridge"))
        .args(["keygen", "--out"])
        .arg(&new_key)
        .output()
        .expect("keygen");
    assert_eq!(again.status.code(), Some(1), "keygen never overwrites without --force");

    let path = dir.path().join("bridge.toml");
    let before = config_text(8080, "");
    std::fs::write(&path, &before).expect("write");
    let old = entree_bridge::config::load(&path).expect("config");
    let in_flight = old.jwt_keys.sign(&serde_json::json!({"sub": "1"})).expect("sign");

    let rolled = before.replace(
        "jwt_signing_key = \"jwt.pem\"",
        "jwt_signing_key = [\"jwt-next.pem\", \"jwt.pem\"]",
    );
    std::fs::write(&path, rolled).expect("write");
    let new = entree_bridge::config::load(&path).expect("config");
    let jwks: serde_json::Value = serde_json::from_str(new.jwt_keys.jwks_json()).expect("json");
    assert_eq!(jwks["keys"].as_array().expect("keys").len(), 2);
    let fresh = new.jwt_keys.sign(&serde_json::json!({"sub": "2"})).expect("sign");
    assert_eq!(
        decode_header(&fresh).expect("header").alg,
        jsonwebtoken::Algorithm::RS256,
        "the first (new RSA) key signs"
    );
    assert_eq!(verify(&fresh, new.jwt_keys.jwks_json()).expect("fresh")["sub"], "2");
    assert_eq!(
        verify(&in_flight, new.jwt_keys.jwks_json()).expect("in flight")["sub"],
        "1",
        "tokens in flight still verify"
    );
}

/// SP key rollover: the next key pair is published in the SP metadata beside the current one
/// and accepted for decryption; a key that is neither is refused.
#[tokio::test]
async fn the_next_sp_key_is_published_and_decrypts_before_it_is_promoted() {
    use entree_bridge::keys::{self, KeyKind};
    let next_key = keys::generate_key(KeyKind::Rsa2048).expect("key");
    let next_cert = keys::self_signed_certificate(&next_key, "sp next", 30).expect("cert");
    let next_b64 = keys::certificate_b64(&next_cert).expect("b64");
    let (k, c) = (next_key.clone(), next_cert.clone());
    let bridge = Bridge::start_edited(
        move |dir| {
            keys::write_private_key(&dir.join("sp-next.key"), &k).expect("write");
            keys::write_certificate(&dir.join("sp-next.crt"), &c).expect("write");
        },
        |config| {
            config.replacen(
                "sp_cert = \"sp.crt\"\n",
                "sp_cert = \"sp.crt\"\nsp_key_next = \"sp-next.key\"\nsp_cert_next = \"sp-next.crt\"\n",
                1,
            )
        },
    )
    .await;
    let metadata = reqwest::get(format!("{}/numo/saml2/kennisnet/metadata", bridge.base))
        .await
        .expect("metadata")
        .text()
        .await
        .expect("body");
    let current_b64 = keys::certificate_b64(&bridge.sp_cert).expect("b64");
    assert_eq!(
        metadata.matches(&current_b64).count(),
        2,
        "current: signing and encryption"
    );
    assert_eq!(metadata.matches(&next_b64).count(), 2, "next: signing and encryption");

    let client = client();
    for (cert, accepted) in [
        (next_cert.clone(), true),
        (bridge.sp_cert.clone(), true),
        (
            keys::self_signed_certificate(&keys::generate_key(KeyKind::Rsa2048).expect("key"), "other", 1)
                .expect("cert"),
            false,
        ),
    ] {
        let login = start_login(&client, &bridge, "numo", None).await;
        let spec = bridge.spec("numo", Some(&login.request_id));
        let xml = bridge
            .idp
            .encrypted_response(&spec, &cert, entree_bridge::saml::decrypt::AES128_GCM)
            .expect("encrypt");
        let outcome = post_acs(&client, &bridge, "numo", &xml, Some(&login.relay_state)).await;
        if accepted {
            assert_eq!(outcome.status, 200, "{}", outcome.body);
        } else {
            outcome.assert_rejected(400, "decryption_failed");
        }
    }
}

/// `keygen --sp` makes an app's SP key and certificate, says where they go (not into
/// `[keys]`), and the config takes the pair as `sp_key` / `sp_cert`.
#[test]
fn keygen_sp_makes_a_pair_the_config_takes_as_an_apps_sp_key() {
    let (dir, _idp, _) = prepare_dir();
    let key = dir.path().join("numo-sp.key");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_entree-bridge"))
            .args(args)
            .arg(&key)
            .output()
            .expect("keygen")
    };
    let out = run(&["keygen", "--sp", "--out"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let advice = String::from_utf8_lossy(&out.stdout);
    assert!(
        advice.contains("sp_key = ") && advice.contains("sp_cert = "),
        "{advice}"
    );
    assert!(
        !advice.contains("jwt_signing_key"),
        "an SP key is not a JWT key: {advice}"
    );
    assert!(advice.contains("Rolling the SP certificate"), "{advice}");
    let cert = dir.path().join("numo-sp.crt");
    let pem = std::fs::read(&cert).expect("the certificate is beside the key");
    let x509 = openssl::x509::X509::from_pem(&pem).expect("a certificate");
    assert_eq!(x509.public_key().expect("key").id(), openssl::pkey::Id::RSA);

    assert_eq!(
        run(&["keygen", "--sp", "--out"]).status.code(),
        Some(1),
        "never overwritten without --force"
    );
    assert_eq!(
        run(&["keygen", "--sp", "--type", "ec", "--out"]).status.code(),
        Some(2),
        "an SP key is RSA"
    );

    let path = dir.path().join("bridge.toml");
    let text = config_text(8080, "").replacen(
        "sp_key = \"sp.key\"\nsp_cert = \"sp.crt\"",
        "sp_key = \"numo-sp.key\"\nsp_cert = \"numo-sp.crt\"",
        1,
    );
    assert!(text.contains("numo-sp.key"));
    std::fs::write(&path, text).expect("write");
    let settings = entree_bridge::config::load(&path).expect("the pair is a valid SP key");
    assert!(settings.apps.iter().any(|a| a.name == "numo"));
}
