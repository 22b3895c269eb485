//! JWT key rollover: `keygen` writes a new key; listed first it signs, and the old key stays
//! published so tokens already in flight keep verifying.

mod common;

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
