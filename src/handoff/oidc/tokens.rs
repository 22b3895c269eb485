//! The tokens of oidc mode and their claims: the id_token (OIDC Core 2, with the hand-off
//! claims of DESIGN.md "jwt mode"), the userinfo answer, the Back-Channel Logout token, and
//! the opaque values (codes, access tokens) with the keys they are stored under.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use openssl::hash::{hash, MessageDigest};
use serde_json::{json, Map, Value};

use crate::handoff::claims;
use crate::identity::Identity;

/// The JWT `typ` of a Back-Channel Logout token (Back-Channel Logout 1.0, 2.4).
pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";
/// The event a logout token carries.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long a logout token is valid: it is sent at once, so two minutes cover any skew.
pub const LOGOUT_TOKEN_LIFETIME_SECS: i64 = 120;
/// How long a code can be redeemed (DESIGN.md: 60 s).
pub const CODE_LIFETIME: Duration = Duration::from_secs(60);

/// A fresh code or access token: 256 random bits, base64url (43 characters).
pub fn random_secret() -> String {
    B64URL.encode(crate::keys::random_bytes::<32>())
}

/// The key a code or access token is stored under: its SHA-256, so the store (a Redis dump,
/// a replica) holds nothing that could be redeemed or presented.
pub fn storage_key(secret: &str) -> String {
    match hash(MessageDigest::sha256(), secret.as_bytes()) {
        Ok(d) => d.iter().map(|b| format!("{b:02x}")).collect(),
        // SHA-256 does not fail; were it to, no key is better than a guessable one.
        Err(_) => crate::keys::random_token(),
    }
}

/// The `sid` of the OP session with this (secret) id: one-way, so the app learns a stable
/// name for the session without learning the cookie that opens it.
pub fn sid_of(session_id: &str) -> String {
    match hash(
        MessageDigest::sha256(),
        format!("entree-bridge sid {session_id}").as_bytes(),
    ) {
        Ok(d) => B64URL.encode(&d[..16]),
        Err(_) => crate::keys::random_token(),
    }
}

/// What an id_token says beyond the identity.
#[derive(Debug, Clone)]
pub struct IdTokenContext<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub lifetime: Duration,
    pub now_unix: i64,
    /// When the student logged in at the IdP (OIDC `auth_time`).
    pub auth_time: i64,
    pub nonce: Option<&'a str>,
    pub sid: &'a str,
}

/// The id_token's claims: the hand-off claims (`aud` = the client_id), `auth_time`,
/// `nonce` when the request had one, and `sid`.
pub fn id_token_claims(identity: &Identity, context: &IdTokenContext<'_>) -> Value {
    let mut claims = claims::build(
        context.client_id,
        context.lifetime,
        context.issuer,
        identity,
        context.now_unix,
    );
    if let Value::Object(map) = &mut claims {
        map.insert("auth_time".into(), json!(context.auth_time));
        map.insert("sid".into(), json!(context.sid));
        if let Some(nonce) = context.nonce {
            map.insert("nonce".into(), json!(nonce));
        }
    }
    claims
}

/// The userinfo answer (OIDC Core 5.3.2): the identity's claims, without the token's own
/// (`iat`, `exp`, `jti`, `nonce`); `sub` is the id_token's.
pub fn userinfo_claims(identity: &Identity, issuer: &str, client_id: &str) -> Value {
    let built = claims::build(client_id, Duration::ZERO, issuer, identity, 0);
    let Value::Object(all) = built else {
        return built;
    };
    let kept: Map<String, Value> = all
        .into_iter()
        .filter(|(name, _)| !matches!(name.as_str(), "iat" | "exp" | "jti" | "nbf"))
        .collect();
    Value::Object(kept)
}

/// A Back-Channel Logout token's claims (Back-Channel Logout 1.0, 2.4): `iss`, `aud`, `iat`,
/// `exp`, `jti`, `sub`, `sid` and the event; never a `nonce`.
pub fn logout_token_claims(issuer: &str, client_id: &str, sub: &str, sid: &str, now_unix: i64) -> Value {
    let mut claims = json!({
        "iss": issuer.trim_end_matches('/'),
        "aud": client_id,
        "iat": now_unix,
        "exp": now_unix + LOGOUT_TOKEN_LIFETIME_SECS,
        "jti": crate::keys::random_token(),
        "sub": sub,
        "sid": sid,
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    });
    // A session whose person is unknown (stored by another version) is named by `sid` alone.
    if sub.is_empty() {
        if let Value::Object(map) = &mut claims {
            map.remove("sub");
        }
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Facts;

    fn identity() -> Identity {
        Identity {
            person_code: "123456".into(),
            facts: Facts {
                federated_id: "anna@school".into(),
                school: Some("99XX".into()),
                affiliation: vec!["student".into()],
                tenant: Some("t1".into()),
                given_name: Some("Anna".into()),
                extra: vec![("given_name".into(), vec!["Anna".into()])].into_iter().collect(),
            },
        }
    }

    #[test]
    fn the_id_token_names_the_client_the_session_and_the_nonce() {
        let c = id_token_claims(
            &identity(),
            &IdTokenContext {
                issuer: "https://bridge.example.nl/",
                client_id: "numo-web",
                lifetime: Duration::from_secs(300),
                now_unix: 1_000,
                auth_time: 900,
                nonce: Some("n-1"),
                sid: "sid-1",
            },
        );
        assert_eq!(c["iss"], "https://bridge.example.nl");
        assert_eq!(c["aud"], "numo-web");
        assert_eq!(c["sub"], "123456");
        assert_eq!(c["exp"], 1_300);
        assert_eq!(c["auth_time"], 900);
        assert_eq!(c["nonce"], "n-1");
        assert_eq!(c["sid"], "sid-1");
        assert_eq!(c["school"], "99XX");
        assert_eq!(c["affiliation"], json!(["student"]));
        assert_eq!(c["tenant"], "t1");
        assert_eq!(c["given_name"], "Anna");
    }

    #[test]
    fn userinfo_has_the_identity_and_no_token_claims() {
        let u = userinfo_claims(&identity(), "https://bridge.example.nl", "numo-web");
        assert_eq!(u["sub"], "123456");
        assert_eq!(u["school"], "99XX");
        assert!(u.get("exp").is_none() && u.get("nonce").is_none() && u.get("jti").is_none());
    }

    #[test]
    fn logout_tokens_carry_the_event_and_no_nonce() {
        let t = logout_token_claims("https://bridge.example.nl", "numo-web", "123456", "sid-1", 50);
        assert_eq!(t["events"][BACKCHANNEL_LOGOUT_EVENT], json!({}));
        assert_eq!(t["exp"], 170);
        assert!(t.get("nonce").is_none());
    }

    #[test]
    fn stored_keys_and_sids_reveal_nothing_of_their_secret() {
        let code = random_secret();
        assert_eq!(code.len(), 43);
        assert_ne!(random_secret(), code);
        let key = storage_key(&code);
        assert_eq!(key.len(), 64);
        assert!(!key.contains(&code));
        assert_eq!(storage_key(&code), key);
        let sid = sid_of("session-id");
        assert_eq!(sid, sid_of("session-id"));
        assert_ne!(sid, sid_of("session-id2"));
        assert!(!sid.contains("session"));
    }
}
