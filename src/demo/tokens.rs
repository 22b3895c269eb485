//! The app's side of the bridge's tokens, for the demo's sample apps, the tests and the fuzz
//! seeds: verifying a hand-off token or link request against the bridge's JWKS, and signing
//! a `link_response` with the shared secret. The bridge itself never does either, so this
//! lives here, behind the `demo` feature, not in the production library.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Rsa;
use serde_json::Value;

use crate::handoff::jwt::JwtError;
use crate::jws;

/// The longest token the sample apps read.
const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Signs claims with HS256 (what an app does with its `link_secret`).
pub fn sign_hs256(secret: &[u8], claims: &Value) -> Result<String, jws::JwsError> {
    jws::sign(&jws::SigningKey::Hmac(secret), "JWT", None, claims)
}

/// Verifies a token's signature against a JWKS document and returns its claims, the way an
/// app verifies the bridge's tokens. Expiry and audience are the caller's to check.
pub fn verify_with_jwks(token: &str, jwks: &Value) -> Result<Value, JwtError> {
    let unverified = jws::parse(token, MAX_TOKEN_LEN)?;
    let kid = unverified.header().get("kid").and_then(Value::as_str).unwrap_or("");
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["kid"].as_str() == Some(kid)))
        .ok_or_else(|| JwtError::UnknownKey(kid.to_string()))?;
    let public = public_key(jwk, unverified.alg_name())?;
    Ok(unverified.verify_public(&public)?.claims()?)
}

/// The public key of an RSA or EC P-256 JWK, for the `alg` the token names.
fn public_key(jwk: &Value, alg: &str) -> Result<PKey<Public>, JwtError> {
    let field = |name: &str| -> Result<BigNum, JwtError> {
        let bytes = B64URL
            .decode(jwk[name].as_str().ok_or(JwtError::Malformed)?)
            .map_err(|_| JwtError::Malformed)?;
        Ok(BigNum::from_slice(&bytes)?)
    };
    match (alg, jwk["kty"].as_str()) {
        ("RS256", Some("RSA")) => Ok(PKey::from_rsa(Rsa::from_public_components(field("n")?, field("e")?)?)?),
        ("ES256", Some("EC")) => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
            let ec = EcKey::from_public_key_affine_coordinates(&group, &*field("x")?, &*field("y")?)?;
            Ok(PKey::from_ec_key(ec)?)
        }
        (other, _) => Err(JwtError::Algorithm(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::handoff::jwt::{SigningKey, SigningKeys};
    use crate::keys::{generate_key, KeyKind};

    #[test]
    fn tokens_verify_against_the_published_jwks_for_both_key_types() {
        for kind in [KeyKind::Rsa2048, KeyKind::EcP256] {
            let keys = SigningKeys::new(vec![SigningKey::from_pkey(generate_key(kind).unwrap()).unwrap()]).unwrap();
            let token = keys.sign(&json!({"sub": "123", "aud": "numo"})).unwrap();
            let jwks: Value = serde_json::from_str(keys.jwks_json()).unwrap();
            let claims = verify_with_jwks(&token, &jwks).unwrap();
            assert_eq!(claims["sub"], "123");
            let mut tampered = token.clone();
            tampered.insert(token.find('.').unwrap() + 2, 'x');
            assert!(verify_with_jwks(&tampered, &jwks).is_err());
        }
    }

    #[test]
    fn a_signed_link_response_is_what_the_bridge_accepts() {
        let secret = b"a-shared-secret-of-enough-length!";
        let token = sign_hs256(
            secret,
            &json!({"aud": "https://b", "jti": "j", "sub": "7", "exp": 2000}),
        )
        .unwrap();
        assert_eq!(
            crate::identity::linking::verify_response(&token, secret, "https://b", 1000),
            Ok(crate::identity::linking::LinkAnswer::Linked {
                jti: "j".into(),
                person_code: "7".into()
            })
        );
    }
}
