//! Compact JWS (RFC 7515): the one implementation of signed tokens in the bridge.
//!
//! Two kinds of token cross the bridge's boundary: the ones it signs itself with its JWT keys
//! (hand-off tokens and link requests, RS256 or ES256, [`crate::handoff::jwt`]) and the link
//! responses an app signs with the shared `link_secret` (HS256, [`crate::identity::linking`]).
//! Both used to hand-roll the encoding, the signature and the checks; this module is the one
//! place that does it, below both, so the rules hold for every token:
//!
//! - the header is a JSON object whose `alg` is exactly the algorithm the caller expects
//!   (no `none`, no switching between HMAC and public keys), and a `crit` header, which
//!   names extensions the bridge does not implement, is refused (RFC 7515 4.1.11);
//! - MACs are compared in constant time;
//! - claims are read only from a token whose signature verified ([`Verified`]).
//!
//! Signing renders the header and the claims with `serde_json` (members in its map order, as
//! before this module), base64url without padding; ES256 signatures are the raw `r || s` form.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Private};
use openssl::sign::{Signer, Verifier};
use serde_json::{json, Map, Value};

/// The signature algorithms the bridge signs and verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// HMAC SHA-256 with a shared secret (link responses).
    Hs256,
    /// RSA PKCS#1 v1.5 with SHA-256.
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
}

impl Alg {
    /// The `alg` header value.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JwsError {
    /// Not three base64url parts, a header or claims that are not JSON objects, too long.
    #[error("malformed token")]
    Malformed,
    /// The header's `alg` is not the expected one (the value as given).
    #[error("unexpected algorithm {0:?}")]
    Algorithm(String),
    /// The header lists critical extensions (`crit`), which the bridge does not implement.
    #[error("critical header extensions are not supported")]
    Critical,
    #[error("bad signature")]
    Signature,
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
}

/// The key a token is signed with: a shared secret, or an RSA or EC P-256 private key.
pub enum SigningKey<'a> {
    Hmac(&'a [u8]),
    Private(&'a PKey<Private>),
}

impl SigningKey<'_> {
    fn alg(&self) -> Result<Alg, JwsError> {
        match self {
            SigningKey::Hmac(_) => Ok(Alg::Hs256),
            SigningKey::Private(key) => alg_of(key),
        }
    }
}

/// RS256 for an RSA key, ES256 for an EC key (the caller checks the curve).
fn alg_of<T: HasPublic>(key: &PKeyRef<T>) -> Result<Alg, JwsError> {
    match key.id() {
        Id::RSA => Ok(Alg::Rs256),
        Id::EC => Ok(Alg::Es256),
        _ => Err(JwsError::Algorithm(format!("{:?}", key.id()))),
    }
}

/// Signs `claims`: header `{"alg", "typ"}` plus `kid` when given.
pub fn sign(key: &SigningKey<'_>, typ: &str, kid: Option<&str>, claims: &Value) -> Result<String, JwsError> {
    let alg = key.alg()?;
    let mut header = json!({"alg": alg.name(), "typ": typ});
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    let signing_input = format!(
        "{}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(claims.to_string())
    );
    let signature = match key {
        SigningKey::Hmac(secret) => hmac_sha256(secret, signing_input.as_bytes())?,
        SigningKey::Private(key) => {
            let mut signer = Signer::new(MessageDigest::sha256(), key)?;
            signer.update(signing_input.as_bytes())?;
            let der_or_raw = signer.sign_to_vec()?;
            match alg {
                Alg::Es256 => {
                    let sig = EcdsaSig::from_der(&der_or_raw)?;
                    let mut raw = sig.r().to_vec_padded(32)?;
                    raw.extend(sig.s().to_vec_padded(32)?);
                    raw
                }
                Alg::Rs256 | Alg::Hs256 => der_or_raw,
            }
        }
    };
    Ok(format!("{signing_input}.{}", B64URL.encode(signature)))
}

fn hmac_sha256(secret: &[u8], input: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    let key = PKey::hmac(secret)?;
    let mut signer = Signer::new(MessageDigest::sha256(), &key)?;
    signer.update(input)?;
    signer.sign_to_vec()
}

/// A token split into its parts, the header read and checked for shape; nothing verified yet.
#[derive(Debug)]
pub struct Unverified<'a> {
    header: Map<String, Value>,
    signing_input: &'a str,
    claims: &'a str,
    signature: &'a str,
}

/// A token whose signature verified: only here are the claims readable.
#[derive(Debug)]
pub struct Verified<'a> {
    header: Map<String, Value>,
    claims: &'a str,
}

/// Splits a compact token (at most `max_len` bytes) and reads its header.
pub fn parse(token: &str, max_len: usize) -> Result<Unverified<'_>, JwsError> {
    if token.len() > max_len {
        return Err(JwsError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwsError::Malformed);
    };
    let Value::Object(header) = decode_json(h)? else {
        return Err(JwsError::Malformed);
    };
    if header.contains_key("crit") {
        return Err(JwsError::Critical);
    }
    Ok(Unverified {
        header,
        signing_input: &token[..h.len() + 1 + c.len()],
        claims: c,
        signature: s,
    })
}

fn decode_json(part: &str) -> Result<Value, JwsError> {
    let bytes = B64URL.decode(part).map_err(|_| JwsError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwsError::Malformed)
}

impl<'a> Unverified<'a> {
    /// The header, to choose a key by `kid` or to read `typ`: not yet authenticated.
    pub fn header(&self) -> &Map<String, Value> {
        &self.header
    }

    /// The `alg` header as given ("" when absent or not a string).
    pub fn alg_name(&self) -> &str {
        self.header.get("alg").and_then(Value::as_str).unwrap_or("")
    }

    fn expect_alg(&self, alg: Alg) -> Result<(), JwsError> {
        if self.alg_name() == alg.name() {
            Ok(())
        } else {
            Err(JwsError::Algorithm(self.alg_name().to_string()))
        }
    }

    fn signature(&self) -> Result<Vec<u8>, JwsError> {
        B64URL.decode(self.signature).map_err(|_| JwsError::Malformed)
    }

    fn verified(self) -> Verified<'a> {
        Verified {
            header: self.header,
            claims: self.claims,
        }
    }

    /// HS256 with `secret`, the MAC compared in constant time.
    pub fn verify_hs256(self, secret: &[u8]) -> Result<Verified<'a>, JwsError> {
        self.expect_alg(Alg::Hs256)?;
        let given = self.signature()?;
        let expected = hmac_sha256(secret, self.signing_input.as_bytes()).map_err(|_| JwsError::Signature)?;
        if given.len() != expected.len() || !openssl::memcmp::eq(&given, &expected) {
            return Err(JwsError::Signature);
        }
        Ok(self.verified())
    }

    /// RS256 with an RSA public key, ES256 with an EC one: the header's `alg` must be the
    /// algorithm of the key.
    pub fn verify_public<T: HasPublic>(self, key: &PKeyRef<T>) -> Result<Verified<'a>, JwsError> {
        let alg = alg_of(key)?;
        self.expect_alg(alg)?;
        let mut signature = self.signature()?;
        if alg == Alg::Es256 {
            if signature.len() != 64 {
                return Err(JwsError::Signature);
            }
            let sig = EcdsaSig::from_private_components(
                BigNum::from_slice(&signature[..32])?,
                BigNum::from_slice(&signature[32..])?,
            )?;
            signature = sig.to_der()?;
        }
        let mut verifier = Verifier::new(MessageDigest::sha256(), key)?;
        verifier.update(self.signing_input.as_bytes())?;
        if !verifier.verify(&signature)? {
            return Err(JwsError::Signature);
        }
        Ok(self.verified())
    }
}

impl Verified<'_> {
    pub fn header(&self) -> &Map<String, Value> {
        &self.header
    }

    /// The claims (any JSON value; the caller reads the members it needs).
    pub fn claims(&self) -> Result<Value, JwsError> {
        decode_json(self.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{generate_key, KeyKind};

    const SECRET: &[u8] = b"a-shared-secret-of-enough-length!";

    #[test]
    fn hs256_round_trips_with_the_header_apps_expect() {
        let token = sign(&SigningKey::Hmac(SECRET), "JWT", None, &json!({"sub": "1"})).unwrap();
        let header = token.split('.').next().unwrap();
        assert_eq!(B64URL.decode(header).unwrap(), br#"{"alg":"HS256","typ":"JWT"}"#);
        let verified = parse(&token, 8192).unwrap().verify_hs256(SECRET).unwrap();
        assert_eq!(verified.claims().unwrap()["sub"], "1");
        assert!(matches!(
            parse(&token, 8192).unwrap().verify_hs256(b"another secret"),
            Err(JwsError::Signature)
        ));
        assert!(matches!(parse(&token, 10), Err(JwsError::Malformed)));
    }

    #[test]
    fn public_keys_verify_their_own_algorithm_only() {
        for kind in [KeyKind::Rsa2048, KeyKind::EcP256] {
            let key = generate_key(kind).unwrap();
            let token = sign(&SigningKey::Private(&key), "JWT", Some("k1"), &json!({"a": 1})).unwrap();
            let public = PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap();
            let verified = parse(&token, 8192).unwrap().verify_public(&public).unwrap();
            assert_eq!(verified.header()["kid"], "k1");
            assert_eq!(verified.claims().unwrap()["a"], 1);
            // The token is not an HMAC over anything, whatever the secret.
            assert!(matches!(
                parse(&token, 8192).unwrap().verify_hs256(SECRET),
                Err(JwsError::Algorithm(_))
            ));
        }
        // An HS256 token never passes for a public-key one (algorithm confusion).
        let hs = sign(&SigningKey::Hmac(SECRET), "JWT", None, &json!({})).unwrap();
        let rsa = generate_key(KeyKind::Rsa2048).unwrap();
        assert!(matches!(
            parse(&hs, 8192).unwrap().verify_public(&rsa),
            Err(JwsError::Algorithm(_))
        ));
    }

    #[test]
    fn headers_that_are_not_plain_objects_are_refused() {
        let body = B64URL.encode("{}");
        let with_header = |h: &str| format!("{}.{body}.", B64URL.encode(h));
        assert!(matches!(parse(&with_header("[1]"), 8192), Err(JwsError::Malformed)));
        assert!(matches!(parse(&with_header("{"), 8192), Err(JwsError::Malformed)));
        assert!(matches!(
            parse(&with_header(r#"{"alg":"HS256","crit":["exp"]}"#), 8192),
            Err(JwsError::Critical)
        ));
        let none = with_header(r#"{"alg":"none"}"#);
        let none = parse(&none, 8192).unwrap();
        assert!(matches!(none.verify_hs256(SECRET), Err(JwsError::Algorithm(a)) if a == "none"));
        assert!(matches!(parse("a.b", 8192), Err(JwsError::Malformed)));
        assert!(matches!(parse("a.b.c.d", 8192), Err(JwsError::Malformed)));
    }
}
