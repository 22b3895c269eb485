//! JWT signing (RS256 with RSA keys, ES256 with P-256 keys) and the JWKS that publishes the
//! public halves. Several keys may be configured: the first signs, all are published, so a
//! key can be rolled over without breaking tokens in flight. The token encoding and the
//! signature itself are [`crate::jws`]'s.

use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::EcKey;
use openssl::hash::{hash, MessageDigest};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use serde_json::{json, Value};

pub use crate::jws::Alg;
use crate::jws::{self, JwsError};
use crate::keys::{self, KeyError};

#[derive(Debug)]
pub struct SigningKey {
    pub kid: String,
    pub alg: Alg,
    key: PKey<Private>,
    jwk: Value,
}

/// The configured JWT keys: `keys()[0]` signs.
#[derive(Debug)]
pub struct SigningKeys {
    keys: Vec<SigningKey>,
    jwks_json: String,
}

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported algorithm {0}")]
    Algorithm(String),
    #[error("no key with kid {0:?}")]
    UnknownKey(String),
    #[error("bad signature")]
    Signature,
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
}

impl From<JwsError> for JwtError {
    fn from(e: JwsError) -> Self {
        match e {
            JwsError::Malformed => JwtError::Malformed,
            JwsError::Algorithm(alg) => JwtError::Algorithm(alg),
            JwsError::Critical => JwtError::Algorithm("crit".into()),
            JwsError::Signature => JwtError::Signature,
            JwsError::Openssl(e) => JwtError::Openssl(e),
        }
    }
}

impl SigningKey {
    pub fn from_pkey(key: PKey<Private>) -> Result<Self, String> {
        let (alg, jwk) = match key.id() {
            Id::RSA => {
                let rsa = key.rsa().map_err(|e| e.to_string())?;
                if rsa.size() < 256 {
                    return Err("RSA keys must have at least 2048 bits".into());
                }
                let jwk =
                    json!({"kty": "RSA", "e": B64URL.encode(rsa.e().to_vec()), "n": B64URL.encode(rsa.n().to_vec())});
                (Alg::Rs256, jwk)
            }
            Id::EC => {
                let ec = key.ec_key().map_err(|e| e.to_string())?;
                if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
                    return Err("EC keys must be on the P-256 curve".into());
                }
                let (x, y) = ec_coordinates(&ec).map_err(|e| e.to_string())?;
                (
                    Alg::Es256,
                    json!({"kty": "EC", "crv": "P-256", "x": B64URL.encode(x), "y": B64URL.encode(y)}),
                )
            }
            _ => return Err("only RSA and EC P-256 keys can sign JWTs".into()),
        };
        let kid = thumbprint(&jwk);
        let mut jwk = jwk;
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(alg.name());
        jwk["use"] = json!("sig");
        Ok(SigningKey { kid, alg, key, jwk })
    }
}

fn ec_coordinates(ec: &EcKey<Private>) -> Result<(Vec<u8>, Vec<u8>), openssl::error::ErrorStack> {
    let mut ctx = BigNumContext::new()?;
    let mut x = BigNum::new()?;
    let mut y = BigNum::new()?;
    ec.public_key()
        .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)?;
    Ok((x.to_vec_padded(32)?, y.to_vec_padded(32)?))
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in lexicographic order.
fn thumbprint(jwk: &Value) -> String {
    let canonical = match jwk["kty"].as_str() {
        Some("RSA") => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            jwk["e"].as_str().unwrap_or(""),
            jwk["n"].as_str().unwrap_or("")
        ),
        _ => format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap_or(""),
            jwk["y"].as_str().unwrap_or("")
        ),
    };
    match hash(MessageDigest::sha256(), canonical.as_bytes()) {
        Ok(d) => B64URL.encode(d),
        Err(_) => B64URL.encode(canonical.as_bytes()),
    }
}

impl SigningKeys {
    pub fn load(paths: &[PathBuf]) -> Result<Self, String> {
        let mut keys = Vec::new();
        for p in paths {
            let key = keys::read_private_key(p).map_err(|e: KeyError| e.to_string())?;
            keys.push(SigningKey::from_pkey(key).map_err(|e| format!("{}: {e}", p.display()))?);
        }
        Self::new(keys)
    }

    pub fn new(keys: Vec<SigningKey>) -> Result<Self, String> {
        if keys.is_empty() {
            return Err("no JWT signing key".into());
        }
        let jwks_json = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string();
        Ok(SigningKeys { keys, jwks_json })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Secret material for keyed log pseudonyms (the signing key's private DER).
    pub fn pseudonym_secret(&self) -> Vec<u8> {
        self.keys[0].key.private_key_to_der().unwrap_or_default()
    }

    /// The JWKS document, rendered once at load.
    pub fn jwks_json(&self) -> &str {
        &self.jwks_json
    }

    /// Signs `claims` with the first key (header `typ` JWT: the hand-off token).
    pub fn sign(&self, claims: &Value) -> Result<String, JwtError> {
        self.sign_typed(claims, "JWT")
    }

    /// Signs with an explicit `typ` header (RFC 8725 3.11), so that tokens of one kind (a
    /// link request) cannot be passed off as another (a hand-off token).
    pub fn sign_typed(&self, claims: &Value, typ: &str) -> Result<String, JwtError> {
        let key = &self.keys[0];
        jws::sign(&jws::SigningKey::Private(&key.key), typ, Some(&key.kid), claims).map_err(JwtError::from)
    }
}

/// A key of [`SigningKeys`] with its `kid`, owned (the key is reference-counted).
#[derive(Clone)]
pub struct OwnedSigner {
    kid: String,
    key: PKey<Private>,
}

impl OwnedSigner {
    pub fn sign(&self, claims: &Value, typ: &str) -> Result<String, JwtError> {
        jws::sign(&jws::SigningKey::Private(&self.key), typ, Some(&self.kid), claims).map_err(JwtError::from)
    }
}

impl SigningKeys {
    /// Signs with the first RSA key (RS256, the algorithm every OIDC library accepts by
    /// default), with header `typ`.
    pub fn sign_rs256(&self, claims: &Value, typ: &str) -> Result<String, JwtError> {
        self.signer_for(Alg::Rs256)
            .ok_or_else(|| JwtError::Algorithm("no RSA key is configured for RS256".into()))?
            .sign(claims, typ)
    }

    /// Whether a key signs with `alg`.
    pub fn has(&self, alg: Alg) -> bool {
        self.keys.iter().any(|k| k.alg == alg)
    }

    /// The first key that signs with `alg` (RS256: RSA, ES256: EC P-256) as a signer of its
    /// own, to sign on another thread: an RSA signature costs some 0.3 ms of CPU, which the
    /// id_token's spends off the async workers.
    pub fn signer_for(&self, alg: Alg) -> Option<OwnedSigner> {
        self.keys.iter().find(|k| k.alg == alg).map(|k| OwnedSigner {
            kid: k.kid.clone(),
            key: k.key.clone(),
        })
    }

    /// The claims of a token these keys signed (an `id_token_hint`): the `kid` must name one
    /// of them and the signature verify with it. Times are the caller's to check.
    pub fn verify_own(&self, token: &str, max_len: usize) -> Result<Value, JwtError> {
        let unverified = jws::parse(token, max_len)?;
        let kid = unverified
            .header()
            .get("kid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(JwtError::UnknownKey(kid))?;
        let verified = unverified.verify_public(&key.key)?;
        Ok(verified.claims()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{generate_key, KeyKind};

    #[test]
    fn tokens_verify_with_the_signing_key_for_both_key_types() {
        for kind in [KeyKind::Rsa2048, KeyKind::EcP256] {
            let key = generate_key(kind).unwrap();
            let public = PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap();
            let keys = SigningKeys::new(vec![SigningKey::from_pkey(key).unwrap()]).unwrap();
            let token = keys.sign(&json!({"sub": "123", "aud": "numo"})).unwrap();
            let verified = jws::parse(&token, 8192).unwrap().verify_public(&public).unwrap();
            assert_eq!(verified.claims().unwrap()["sub"], "123");
            assert_eq!(verified.header()["typ"], "JWT");
            let mut tampered = token.clone();
            tampered.insert(token.find('.').unwrap() + 2, 'x');
            assert!(jws::parse(&tampered, 8192)
                .and_then(|t| t.verify_public(&public))
                .is_err());
        }
    }

    #[test]
    fn rs256_signs_with_the_rsa_key_and_own_tokens_verify() {
        let ec = SigningKey::from_pkey(generate_key(KeyKind::EcP256).unwrap()).unwrap();
        let rsa = SigningKey::from_pkey(generate_key(KeyKind::Rsa2048).unwrap()).unwrap();
        let ec_only = SigningKeys::new(vec![
            SigningKey::from_pkey(generate_key(KeyKind::EcP256).unwrap()).unwrap()
        ])
        .unwrap();
        assert!(!ec_only.has(Alg::Rs256) && ec_only.has(Alg::Es256));
        assert!(ec_only.sign_rs256(&json!({}), "JWT").is_err());
        let keys = SigningKeys::new(vec![ec, rsa]).unwrap();
        assert!(keys.has(Alg::Rs256));
        let token = keys.sign_rs256(&json!({"sub": "1"}), "JWT").unwrap();
        let header: Value = serde_json::from_slice(&B64URL.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(keys.verify_own(&token, 8192).unwrap()["sub"], "1");
        assert!(ec_only.verify_own(&token, 8192).is_err());
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 2, 'x');
        assert!(keys.verify_own(&tampered, 8192).is_err());
    }

    #[test]
    fn all_keys_are_published_and_the_first_signs() {
        let a = SigningKey::from_pkey(generate_key(KeyKind::EcP256).unwrap()).unwrap();
        let b = SigningKey::from_pkey(generate_key(KeyKind::Rsa2048).unwrap()).unwrap();
        let first_kid = a.kid.clone();
        let keys = SigningKeys::new(vec![a, b]).unwrap();
        let jwks: Value = serde_json::from_str(keys.jwks_json()).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
        let token = keys.sign(&json!({})).unwrap();
        let header: Value = serde_json::from_slice(&B64URL.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["kid"], first_kid.as_str());
    }
}
