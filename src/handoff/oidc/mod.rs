//! oidc mode: the bridge as an OpenID Connect provider for its apps (OIDC Core 1.0, RFC 6749,
//! RFC 7636 PKCE, RFC 9207 `iss`, RP-Initiated and Back-Channel Logout 1.0), as logic free of
//! the wire and of the stores: the client registrations, the authorization request and its
//! checks ([`authorize`]), PKCE ([`pkce`]), the tokens and their claims ([`tokens`]) and the
//! discovery document ([`discovery`]). The use case that ties them to the SAML login and the
//! stores is `login::oidc`; the endpoints are `http::oidc`.

pub mod authorize;
pub mod client_auth;
pub mod discovery;
pub mod pkce;
pub mod tokens;

use url::Url;

/// A client secret is at least this long (check-config refuses shorter ones): 32 characters
/// of a generated secret are far beyond guessing, and the token endpoint is rate limited.
pub const MIN_SECRET_LEN: usize = 32;

/// An app's OpenID Connect client registration (`[apps.X.handoff]` in oidc mode).
#[derive(Debug)]
pub struct OidcClient {
    pub client_id: String,
    /// `None`: a public client, which authenticates with PKCE alone.
    pub secret: Option<ClientSecret>,
    /// Exact strings: a redirect_uri is accepted only when it is one of these, byte for byte.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return to, exact strings.
    pub post_logout_redirect_uris: Vec<String>,
    /// Where Back-Channel Logout tokens are POSTed, when the app takes them.
    pub backchannel_logout_uri: Option<Url>,
    /// How its id_tokens (and logout tokens) are signed: RS256 unless the client was
    /// registered for ES256 (`id_token_signed_response_alg`), which costs a twentieth.
    pub id_token_alg: crate::jws::Alg,
}

impl OidcClient {
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }

    pub fn has_post_logout_redirect_uri(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|r| r == uri)
    }

    /// Where a login that did not start at this client (an elo link) sends the student: the
    /// origin of the first redirect URI, from where the app starts its own OIDC login.
    pub fn default_landing(&self) -> Option<String> {
        let first = Url::parse(self.redirect_uris.first()?).ok()?;
        Some(format!("{}/", first.origin().ascii_serialization()))
    }
}

/// A client secret: never printed, compared in constant time.
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(secret: String) -> Self {
        ClientSecret(secret)
    }

    /// Whether `given` is this secret. Constant time in the secret's content (the length is
    /// no secret: check-config only bounds it from below).
    pub fn matches(&self, given: &str) -> bool {
        given.len() == self.0.len() && openssl::memcmp::eq(given.as_bytes(), self.0.as_bytes())
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// Whether `uri` may be registered as a redirect, post-logout or back-channel URI: absolute,
/// no fragment (RFC 6749 3.1.2), https, or http on a loopback host (a developer's machine,
/// the demo; OAuth 2.0 for Native Apps 7.3).
pub fn check_registered_uri(uri: &str) -> Result<Url, String> {
    let url = Url::parse(uri).map_err(|e| format!("{uri:?} is not an absolute URL: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!(
            "{uri:?} has a fragment (#...), which redirect URIs may not have"
        ));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "{uri:?} is plain http; only https is allowed, or http on a loopback host (127.0.0.1, [::1], localhost)"
        )),
        other => Err(format!(
            "{uri:?} has scheme {other:?}; only https (or loopback http) is allowed"
        )),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_exactly_and_never_print() {
        let secret = ClientSecret::new("s".repeat(40));
        assert!(secret.matches(&"s".repeat(40)));
        assert!(!secret.matches(&"s".repeat(39)));
        assert!(!secret.matches(&format!("{}t", "s".repeat(39))));
        assert!(!format!("{secret:?}").contains("sss"));
    }

    #[test]
    fn registered_uris_are_https_or_loopback_http_without_fragments() {
        for good in [
            "https://numo.example.nl/oidc/callback",
            "http://127.0.0.1:8080/cb",
            "http://localhost/cb",
            "http://[::1]:3000/cb",
        ] {
            assert!(check_registered_uri(good).is_ok(), "{good}");
        }
        for bad in [
            "http://numo.example.nl/cb",
            "https://numo.example.nl/cb#x",
            "javascript:alert(1)",
            "/relative",
            "ftp://127.0.0.1/cb",
        ] {
            assert!(check_registered_uri(bad).is_err(), "{bad}");
        }
    }
}
