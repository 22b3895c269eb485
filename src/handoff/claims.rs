//! The hand-off JWT's claims, exactly as DESIGN.md "jwt mode" names them.

use serde_json::{json, Map, Value};

use crate::config::App;
use crate::identity::Identity;

pub fn build(app: &App, issuer: &str, identity: &Identity, now_unix: i64) -> Value {
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(issuer.trim_end_matches('/')));
    claims.insert("aud".into(), json!(app.name));
    claims.insert("sub".into(), json!(identity.person_code));
    claims.insert("iat".into(), json!(now_unix));
    claims.insert("exp".into(), json!(now_unix + app.token_lifetime.as_secs() as i64));
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
