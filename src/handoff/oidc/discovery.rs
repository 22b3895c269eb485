//! `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0, 3): every field an RP
//! library reads to configure itself, and nothing the bridge does not do.

use serde_json::{json, Value};

use crate::handoff::claims::RESERVED_CLAIMS;

/// The endpoints' paths below the issuer.
pub const AUTHORIZE_PATH: &str = "/oidc/authorize";
pub const TOKEN_PATH: &str = "/oidc/token";
pub const USERINFO_PATH: &str = "/oidc/userinfo";
pub const LOGOUT_PATH: &str = "/oidc/logout";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// The discovery document of `issuer` (`server.public_base_url`); `extra_claims` are the
/// `[apps.X.claims]` names of the oidc apps.
/// `algs` are the id_token algorithms the bridge's keys can sign (RS256 first).
pub fn document(issuer: &str, extra_claims: &[&str], algs: &[&str]) -> Value {
    let issuer = issuer.trim_end_matches('/');
    let at = |path: &str| format!("{issuer}{path}");
    let mut claims: Vec<&str> = RESERVED_CLAIMS
        .iter()
        .copied()
        .filter(|c| !matches!(*c, "jti" | "nbf" | "events" | "azp" | "at_hash" | "c_hash"))
        .collect();
    for c in extra_claims {
        if !claims.contains(c) {
            claims.push(c);
        }
    }
    json!({
        "issuer": issuer,
        "authorization_endpoint": at(AUTHORIZE_PATH),
        "token_endpoint": at(TOKEN_PATH),
        "userinfo_endpoint": at(USERINFO_PATH),
        "jwks_uri": at(JWKS_PATH),
        "end_session_endpoint": at(LOGOUT_PATH),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": ["openid"],
        "claims_supported": claims,
        "prompt_values_supported": ["none", "login"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "authorization_response_iss_parameter_supported": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_the_endpoints_under_the_issuer() {
        let d = document("https://bridge.example.nl/", &["given_name"], &["RS256"]);
        assert_eq!(d["issuer"], "https://bridge.example.nl");
        assert_eq!(d["token_endpoint"], "https://bridge.example.nl/oidc/token");
        assert_eq!(d["jwks_uri"], "https://bridge.example.nl/.well-known/jwks.json");
        assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
        let claims = d["claims_supported"].as_array().unwrap();
        for c in ["sub", "school", "affiliation", "sid", "auth_time", "given_name"] {
            assert!(claims.iter().any(|v| v == c), "{c}");
        }
        assert!(!claims.iter().any(|v| v == "jti"));
    }
}
