//! The hand-off JWT's claims, exactly as DESIGN.md "jwt mode" names them.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::identity::Identity;

/// Claims the bridge sets itself; `[apps.X.claims]` may not overwrite them.
pub const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "aud",
    "sub",
    "iat",
    "exp",
    "nbf",
    "jti",
    "school",
    "affiliation",
    "tenant",
    // The id_token's own (oidc mode) and the claims of OIDC tokens an app's library reads.
    "auth_time",
    "nonce",
    "sid",
    "azp",
    "at_hash",
    "c_hash",
    "events",
];

/// The claims of a token for the app `audience` (its name), valid for `lifetime`.
pub fn build(audience: &str, lifetime: Duration, issuer: &str, identity: &Identity, now_unix: i64) -> Value {
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(issuer.trim_end_matches('/')));
    claims.insert("aud".into(), json!(audience));
    claims.insert("sub".into(), json!(identity.person_code));
    claims.insert("iat".into(), json!(now_unix));
    claims.insert("exp".into(), json!(now_unix + lifetime.as_secs() as i64));
    claims.insert("jti".into(), json!(crate::keys::random_token()));
    if let Some(school) = &identity.facts.school {
        claims.insert("school".into(), json!(school));
    }
    claims.insert("affiliation".into(), json!(identity.facts.affiliation));
    if let Some(tenant) = &identity.facts.tenant {
        claims.insert("tenant".into(), json!(tenant));
    }
    for (name, values) in &identity.facts.extra {
        let value = match values.as_slice() {
            [one] => json!(one),
            many => json!(many),
        };
        claims.insert(name.clone(), value);
    }
    Value::Object(claims)
}
