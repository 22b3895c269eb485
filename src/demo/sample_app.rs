//! The demo's jwt-mode sample app: its callback checks the token as docs/integration.md asks
//! of a real app (signature against the JWKS, `iss`, `aud`, `exp`, and a `jti` not seen
//! before), then shows the claims and the raw token, to try the integration snippets on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::DemoState;
use crate::http::pages::{csp_hash, html_page, html_response, page_csp, Lang, STYLE};
use crate::saml::xml::escape;

/// The `jti`s of accepted tokens, each kept until its `exp`: a token posted again is refused,
/// as the docs tell apps to do.
#[derive(Default)]
pub struct SeenTokens(Mutex<HashMap<String, i64>>);

/// More than this many live tokens remembered at once: the demo is one person's browser.
const MAX_REMEMBERED: usize = 10_000;

impl SeenTokens {
    /// Whether `jti` is new (and now remembered until `exp`).
    fn first_use(&self, jti: &str, exp: i64, now: i64) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        seen.retain(|_, until| *until >= now);
        if seen.contains_key(jti) || seen.len() >= MAX_REMEMBERED {
            return false;
        }
        seen.insert(jti.to_string(), exp);
        true
    }
}

#[derive(Deserialize)]
pub struct Callback {
    token: String,
    target: Option<String>,
}

/// The copy button's script, allowed by its hash in the page's CSP.
const COPY_SCRIPT: &str = "document.getElementById('copy').addEventListener('click',function(){var t=document.getElementById('token');t.select();navigator.clipboard.writeText(t.value);this.textContent='Gekopieerd / copied';});";

/// `POST /demo/app/callback`: the token checked, then the claims and the raw token shown.
pub async fn callback(State(state): State<Arc<DemoState>>, Form(c): Form<Callback>) -> Response {
    match check(&state, &c.token) {
        Ok(claims) => accepted_page(&claims, &c.token, c.target.as_deref()),
        Err(e) => html_response(
            StatusCode::UNAUTHORIZED,
            html_page(
                Lang::En,
                "Token refused",
                &format!(
                    "<h1>Token refused</h1><p>{}</p><p><a href=\"/\">Back to the demo</a></p>",
                    escape(&e)
                ),
            ),
            &page_csp(),
        ),
    }
}

fn check(state: &DemoState, token: &str) -> Result<serde_json::Value, String> {
    let jwks: serde_json::Value = serde_json::from_str(state.settings.jwt_keys.jwks_json()).unwrap_or_default();
    let claims = super::tokens::verify_with_jwks(token, &jwks).map_err(|e| e.to_string())?;
    let now = chrono::Utc::now().timestamp();
    let exp = claims["exp"].as_i64().unwrap_or(0);
    if exp <= now {
        return Err("token expired".into());
    }
    if !state.settings.apps.iter().any(|a| claims["aud"] == a.name.as_str()) {
        return Err("token audience is not one of the demo apps".into());
    }
    if claims["iss"] != state.settings.public_base_url.as_str().trim_end_matches('/') {
        return Err("token issuer is not this bridge".into());
    }
    let jti = claims["jti"].as_str().ok_or("token has no jti")?;
    if !state.seen_tokens.first_use(jti, exp, now) {
        return Err(format!(
            "token replayed: its jti {jti:?} was used before (an app remembers each jti until exp and refuses it again)"
        ));
    }
    Ok(claims)
}

/// A JSON object's members as table rows (claim, value), escaped.
pub(super) fn claim_rows(value: &serde_json::Value) -> String {
    value
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    format!(
                        "<tr><td><code>{}</code></td><td>{}</td></tr>",
                        escape(k),
                        escape(&v.to_string())
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn accepted_page(claims: &serde_json::Value, token: &str, target: Option<&str>) -> Response {
    let rows = claim_rows(claims);
    let body = format!(
        concat!(
            "<h1>Ingelogd in de sample app</h1><p>De JWT is geverifieerd tegen <a href=\"/.well-known/jwks.json\">de JWKS van de bridge</a>, ",
            "en zijn <code>jti</code> is onthouden tot <code>exp</code>: nog een keer posten wordt geweigerd. ",
            "<i lang=\"en\">The token was verified against the bridge's JWKS and its jti remembered until exp: posting it again is refused.</i></p>",
            "<table><caption>Claims</caption>{rows}</table>{target}",
            "<h2>Het token / the raw token</h2>",
            "<p><label for=\"token\">Probeer er de voorbeelden uit docs/integration.md op (PyJWT, jose, php-jwt, Nimbus) binnen <code>exp</code>. ",
            "<i lang=\"en\">Try the snippets of docs/integration.md on it before it expires.</i></label></p>",
            "<p><textarea id=\"token\" rows=\"6\" cols=\"60\" readonly>{token}</textarea></p>",
            "<p><button type=\"button\" id=\"copy\">Kopieer / copy</button></p>",
            "<p><a href=\"/numo/saml2/kennisnet/logout\">Uitloggen / log out</a> · <a href=\"/\">Terug naar de demo</a></p>",
            "<script>{script}</script>"
        ),
        rows = rows,
        target = target
            .map(|t| format!("<p>target: <code>{}</code></p>", escape(t)))
            .unwrap_or_default(),
        token = escape(token),
        script = COPY_SCRIPT,
    );
    let csp = format!(
        "default-src 'none'; script-src {}; style-src {}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        csp_hash(COPY_SCRIPT),
        csp_hash(STYLE)
    );
    html_response(StatusCode::OK, html_page(Lang::Nl, "Sample app", &body), &csp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_accepted_once_until_it_expires() {
        let seen = SeenTokens::default();
        assert!(seen.first_use("a", 100, 50));
        assert!(!seen.first_use("a", 100, 60), "a replay within exp");
        assert!(seen.first_use("b", 100, 60));
        // Past its exp the entry is forgotten (the token itself is refused as expired).
        assert!(seen.first_use("a", 200, 101));
    }
}
