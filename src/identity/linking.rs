//! First-time account linking, the protocol of DESIGN.md "account linking". The bridge sends
//! the student to the app's `link_url` with a `link_request` JWT it signs itself; the app logs
//! the student in locally (passwords never reach the bridge) and sends them back to
//! `return_url?link_response=JWT`, HS256 with the shared `link_secret`.

use serde_json::{json, Value};

use crate::jws::{self, JwsError};

/// The `typ` header of a link request: it carries no `sub` and must never pass for a
/// hand-off token, whose `typ` is `JWT`.
pub const LINK_REQUEST_TYP: &str = "link-request+jwt";

/// How long a started link waits for the app's answer.
pub const LINK_LIFETIME_SECS: i64 = 600;
const MAX_TOKEN_LEN: usize = 8192;

/// The `link_request` claims.
pub fn request_claims(
    issuer: &str,
    app: &str,
    jti: &str,
    school: Option<&str>,
    given_name: Option<&str>,
    return_url: &str,
    now: i64,
) -> Value {
    let mut claims = json!({
        "iss": issuer.trim_end_matches('/'),
        "aud": app,
        "jti": jti,
        "iat": now,
        "exp": now + LINK_LIFETIME_SECS,
        "return_url": return_url,
    });
    if let Some(s) = school {
        claims["school"] = json!(s);
    }
    if let Some(g) = given_name {
        claims["given_name"] = json!(g);
    }
    claims
}

/// What a verified `link_response` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkAnswer {
    /// The student logged in to the app as this person code.
    Linked { jti: String, person_code: String },
    /// The student or the app cancelled (`error` claim).
    Cancelled { jti: String, error: String },
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LinkResponseError {
    #[error("the link_response is not a well-formed JWT")]
    Malformed,
    #[error("the link_response is not HS256 (alg {0:?})")]
    Algorithm(String),
    #[error("the link_response signature does not verify with the app's link_secret")]
    Signature,
    #[error("the link_response audience {0:?} is not this bridge")]
    Audience(String),
    #[error("the link_response expired")]
    Expired,
    #[error("the link_response has no usable jti or sub")]
    Incomplete,
}

impl LinkResponseError {
    pub fn code(&self) -> &'static str {
        match self {
            LinkResponseError::Malformed => "link_response_malformed",
            LinkResponseError::Algorithm(_) => "link_response_algorithm",
            LinkResponseError::Signature => "link_response_signature",
            LinkResponseError::Audience(_) => "link_response_audience",
            LinkResponseError::Expired => "link_response_expired",
            LinkResponseError::Incomplete => "link_response_incomplete",
        }
    }
}

/// Verifies a `link_response`: HS256 only, signature in constant time, audience, expiry.
pub fn verify_response(token: &str, secret: &[u8], audience: &str, now: i64) -> Result<LinkAnswer, LinkResponseError> {
    let refused = |e: JwsError| match e {
        JwsError::Algorithm(alg) => LinkResponseError::Algorithm(alg.chars().take(20).collect()),
        JwsError::Critical => LinkResponseError::Algorithm("crit".into()),
        JwsError::Signature | JwsError::Openssl(_) => LinkResponseError::Signature,
        JwsError::Malformed => LinkResponseError::Malformed,
    };
    let verified = jws::parse(token, MAX_TOKEN_LEN)
        .and_then(|t| t.verify_hs256(secret))
        .map_err(refused)?;
    let claims = verified.claims().map_err(refused)?;
    let aud_ok = match &claims["aud"] {
        Value::String(a) => a.trim_end_matches('/') == audience.trim_end_matches('/'),
        Value::Array(list) => list.iter().any(|a| {
            a.as_str()
                .is_some_and(|a| a.trim_end_matches('/') == audience.trim_end_matches('/'))
        }),
        _ => false,
    };
    if !aud_ok {
        return Err(LinkResponseError::Audience(
            claims["aud"].to_string().chars().take(80).collect(),
        ));
    }
    match claims["exp"].as_i64() {
        Some(exp) if exp > now => {}
        _ => return Err(LinkResponseError::Expired),
    }
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty() && j.len() <= 64)
        .ok_or(LinkResponseError::Incomplete)?
        .to_string();
    if let Some(error) = claims["error"].as_str() {
        return Ok(LinkAnswer::Cancelled {
            jti,
            error: error.chars().take(100).collect(),
        });
    }
    let person_code = claims["sub"]
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control))
        .ok_or(LinkResponseError::Incomplete)?
        .to_string();
    Ok(LinkAnswer::Linked { jti, person_code })
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
    use base64::Engine;

    use super::*;

    /// What an app does (the demo's sign_hs256, which the library does not ship).
    fn sign_hs256(secret: &[u8], claims: &Value) -> Result<String, JwsError> {
        jws::sign(&jws::SigningKey::Hmac(secret), "JWT", None, claims)
    }

    const SECRET: &[u8] = b"a-shared-secret-of-enough-length!";
    const AUD: &str = "https://bridge.example.nl";

    fn token(claims: Value) -> String {
        sign_hs256(SECRET, &claims).unwrap()
    }

    #[test]
    fn a_good_response_links() {
        let t = token(json!({"aud": AUD, "jti": "j1", "sub": "12345", "exp": 2000}));
        assert_eq!(
            verify_response(&t, SECRET, AUD, 1000),
            Ok(LinkAnswer::Linked {
                jti: "j1".into(),
                person_code: "12345".into()
            })
        );
        let cancel = token(json!({"aud": AUD, "jti": "j1", "error": "cancelled", "exp": 2000}));
        assert!(matches!(
            verify_response(&cancel, SECRET, AUD, 1000),
            Ok(LinkAnswer::Cancelled { .. })
        ));
    }

    #[test]
    fn forged_expired_foreign_and_none_are_refused() {
        let good = json!({"aud": AUD, "jti": "j1", "sub": "12345", "exp": 2000});
        let forged = sign_hs256(b"another secret", &good).unwrap();
        assert_eq!(
            verify_response(&forged, SECRET, AUD, 1000),
            Err(LinkResponseError::Signature)
        );
        assert_eq!(
            verify_response(&token(good.clone()), SECRET, AUD, 2000),
            Err(LinkResponseError::Expired)
        );
        let foreign = token(json!({"aud": "https://other", "jti": "j1", "sub": "1", "exp": 2000}));
        assert!(matches!(
            verify_response(&foreign, SECRET, AUD, 1000),
            Err(LinkResponseError::Audience(_))
        ));
        let none = format!(
            "{}.{}.",
            B64URL.encode(r#"{"alg":"none"}"#),
            B64URL.encode(good.to_string())
        );
        assert!(matches!(
            verify_response(&none, SECRET, AUD, 1000),
            Err(LinkResponseError::Algorithm(_))
        ));
        let mut tampered = token(good);
        tampered.insert(tampered.find('.').unwrap() + 3, 'A');
        assert!(verify_response(&tampered, SECRET, AUD, 1000).is_err());
        assert_eq!(
            verify_response("x.y", SECRET, AUD, 1000),
            Err(LinkResponseError::Malformed)
        );
        let no_sub = token(json!({"aud": AUD, "jti": "j1", "exp": 2000}));
        assert_eq!(
            verify_response(&no_sub, SECRET, AUD, 1000),
            Err(LinkResponseError::Incomplete)
        );
    }
}
