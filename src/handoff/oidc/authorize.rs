//! The authorization request (`GET /oidc/authorize`), read and checked in the order that
//! keeps it safe (RFC 6749 4.1.2.1, OIDC Core 3.1.2): first the client and its redirect URI,
//! and while either is in doubt nothing is sent anywhere (a page, never a redirect); only
//! then the rest, whose errors go back to the registered redirect URI with `error`, `state`
//! and `iss`.

use serde::{Deserialize, Serialize};

use super::{pkce, OidcClient};

/// Longest `state` and `nonce` taken: both are echoed (the nonce into the id_token) and
/// stored with the pending login, so they are bounded; clients send 20 to 64 characters.
pub const MAX_STATE_LEN: usize = 1024;
pub const MAX_NONCE_LEN: usize = 512;

/// The parameters of an authorization request, each at most once (RFC 6749 3.1: "parameters
/// MUST NOT be included more than once"); unknown ones are ignored, as OAuth requires.
#[derive(Debug, Default, Clone)]
pub struct AuthorizeQuery {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub response_mode: Option<String>,
    /// `request` (a request object): not supported.
    pub request_object: bool,
    /// `request_uri`: not supported.
    pub request_uri: bool,
    /// The names that appeared more than once.
    repeated: Vec<&'static str>,
}

const NAMES: [&str; 11] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "response_mode",
];

impl AuthorizeQuery {
    pub fn parse(query: &str) -> Self {
        let mut q = AuthorizeQuery::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            // RFC 6749 3.1: a parameter sent without a value is treated as omitted.
            if value.is_empty() {
                continue;
            }
            if name == "request" {
                q.request_object = true;
                continue;
            }
            if name == "request_uri" {
                q.request_uri = true;
                continue;
            }
            let Some(known) = NAMES.iter().find(|n| **n == name) else {
                continue;
            };
            let slot = match *known {
                "response_type" => &mut q.response_type,
                "client_id" => &mut q.client_id,
                "redirect_uri" => &mut q.redirect_uri,
                "scope" => &mut q.scope,
                "state" => &mut q.state,
                "nonce" => &mut q.nonce,
                "code_challenge" => &mut q.code_challenge,
                "code_challenge_method" => &mut q.code_challenge_method,
                "prompt" => &mut q.prompt,
                "max_age" => &mut q.max_age,
                _ => &mut q.response_mode,
            };
            if slot.is_some() {
                if !q.repeated.contains(known) {
                    q.repeated.push(known);
                }
            } else {
                *slot = Some(value.into_owned());
            }
        }
        q
    }

    fn repeated(&self, name: &str) -> bool {
        self.repeated.contains(&name)
    }
}

/// What a checked authorization request asks for, kept with the pending login (and a
/// pending link) until the code is issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// The S256 `code_challenge`: the code is bound to it.
    pub code_challenge: String,
}

impl Authorization {
    /// The bytes it adds to a stored pending login (for the pending-login budget).
    pub fn stored_len(&self) -> usize {
        self.client_id.len()
            + self.redirect_uri.len()
            + self.state.as_ref().map_or(0, String::len)
            + self.nonce.as_ref().map_or(0, String::len)
            + self.code_challenge.len()
            + 64
    }
}

/// `prompt` (OIDC Core 3.1.2.1) as far as the bridge acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// Log in when there is no session, else use it.
    Default,
    /// Never show anything: the session or `login_required`.
    None,
    /// A fresh login at the IdP (SAML ForceAuthn), whatever session there is.
    Login,
}

/// A checked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub authorization: Authorization,
    pub prompt: Prompt,
    /// `max_age` in seconds: a session whose login is older counts as none.
    pub max_age: Option<u64>,
}

/// Why a request cannot even be answered at a redirect URI: shown as a page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageRefusal {
    #[error("no client_id, or client_id or redirect_uri given more than once")]
    Malformed,
    #[error("no app has the client_id {0:?}")]
    UnknownClient(String),
    #[error("redirect_uri {0:?} is not registered for this client")]
    RedirectUriNotRegistered(String),
}

/// The OAuth error codes of an authorization response (RFC 6749 4.1.2.1, OIDC Core 3.1.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizeErrorCode {
    InvalidRequest,
    UnsupportedResponseType,
    InvalidScope,
    LoginRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    ServerError,
    TemporarilyUnavailable,
}

impl AuthorizeErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizeErrorCode::InvalidRequest => "invalid_request",
            AuthorizeErrorCode::UnsupportedResponseType => "unsupported_response_type",
            AuthorizeErrorCode::InvalidScope => "invalid_scope",
            AuthorizeErrorCode::LoginRequired => "login_required",
            AuthorizeErrorCode::RequestNotSupported => "request_not_supported",
            AuthorizeErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            AuthorizeErrorCode::ServerError => "server_error",
            AuthorizeErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// An error for the client, to its (registered) redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRefusal {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub error: AuthorizeErrorCode,
    pub description: String,
}

impl RedirectRefusal {
    pub fn new(to: &Authorization, error: AuthorizeErrorCode, description: impl Into<String>) -> Self {
        RedirectRefusal {
            redirect_uri: to.redirect_uri.clone(),
            state: to.state.clone(),
            error,
            description: description.into(),
        }
    }

    /// The redirect: `redirect_uri?error=..&error_description=..&state=..&iss=..`.
    pub fn location(&self, issuer: &str) -> String {
        let mut pairs = vec![
            ("error", self.error.as_str()),
            ("error_description", self.description.as_str()),
        ];
        if let Some(state) = &self.state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", issuer));
        with_query(&self.redirect_uri, &pairs)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Page(PageRefusal),
    Redirect(RedirectRefusal),
}

/// The client_id of a request, when it names exactly one; the caller finds its app.
pub fn client_id(query: &AuthorizeQuery) -> Result<&str, PageRefusal> {
    match &query.client_id {
        Some(id) if !id.is_empty() && !query.repeated("client_id") => Ok(id),
        _ => Err(PageRefusal::Malformed),
    }
}

/// Checks `query` for `client` (the app its client_id names).
pub fn check(query: &AuthorizeQuery, client: &OidcClient) -> Result<Checked, Refusal> {
    // The redirect URI first: until it is known to be the client's, nothing is sent to it.
    if query.repeated("redirect_uri") {
        return Err(Refusal::Page(PageRefusal::Malformed));
    }
    let redirect_uri = match &query.redirect_uri {
        Some(uri) if client.has_redirect_uri(uri) => uri.clone(),
        // OIDC Core 3.1.2.1: redirect_uri is REQUIRED; no default even with one registered.
        Some(uri) => return Err(Refusal::Page(PageRefusal::RedirectUriNotRegistered(uri.clone()))),
        None => return Err(Refusal::Page(PageRefusal::RedirectUriNotRegistered(String::new()))),
    };
    // `state` is echoed in every answer from here on, so it is read before anything can fail.
    let state = query
        .state
        .clone()
        .filter(|s| s.len() <= MAX_STATE_LEN && !s.is_empty());
    let mut authorization = Authorization {
        client_id: client.client_id.clone(),
        redirect_uri,
        state,
        nonce: None,
        code_challenge: String::new(),
    };
    let refuse = |a: &Authorization, error, description: &str| {
        Err(Refusal::Redirect(RedirectRefusal::new(a, error, description)))
    };
    if let Some(name) = NAMES.iter().find(|n| query.repeated(n)) {
        return refuse(
            &authorization,
            AuthorizeErrorCode::InvalidRequest,
            &format!("{name} is given more than once"),
        );
    }
    if query.state.as_ref().is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return refuse(&authorization, AuthorizeErrorCode::InvalidRequest, "state is too long");
    }
    if query.request_object {
        return refuse(
            &authorization,
            AuthorizeErrorCode::RequestNotSupported,
            "request objects are not supported",
        );
    }
    if query.request_uri {
        return refuse(
            &authorization,
            AuthorizeErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        );
    }
    match query.response_type.as_deref() {
        Some("code") => {}
        None => {
            return refuse(
                &authorization,
                AuthorizeErrorCode::InvalidRequest,
                "response_type is missing",
            )
        }
        Some(_) => {
            return refuse(
                &authorization,
                AuthorizeErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )
        }
    }
    if !matches!(query.response_mode.as_deref(), None | Some("query")) {
        return refuse(
            &authorization,
            AuthorizeErrorCode::InvalidRequest,
            "only response_mode=query is supported",
        );
    }
    if !query
        .scope
        .as_deref()
        .is_some_and(|s| s.split(' ').any(|scope| scope == "openid"))
    {
        return refuse(
            &authorization,
            AuthorizeErrorCode::InvalidScope,
            "scope must include openid",
        );
    }
    // PKCE S256 for every client, confidential ones too (OAuth 2.1, RFC 9700 2.1.1).
    let challenge = match (query.code_challenge.as_deref(), query.code_challenge_method.as_deref()) {
        (None, _) => {
            return refuse(
                &authorization,
                AuthorizeErrorCode::InvalidRequest,
                "code_challenge is required (PKCE S256)",
            )
        }
        (Some(_), None | Some("plain")) => {
            return refuse(
                &authorization,
                AuthorizeErrorCode::InvalidRequest,
                "code_challenge_method must be S256 (plain is not accepted)",
            )
        }
        (Some(_), Some(m)) if m != "S256" => {
            return refuse(
                &authorization,
                AuthorizeErrorCode::InvalidRequest,
                "code_challenge_method must be S256",
            )
        }
        (Some(c), Some(_)) if !pkce::valid_challenge(c) => {
            return refuse(
                &authorization,
                AuthorizeErrorCode::InvalidRequest,
                "code_challenge is not a base64url SHA-256 (43 characters)",
            )
        }
        (Some(c), Some(_)) => c.to_string(),
    };
    authorization.code_challenge = challenge;
    match &query.nonce {
        Some(n) if n.len() > MAX_NONCE_LEN => {
            return refuse(&authorization, AuthorizeErrorCode::InvalidRequest, "nonce is too long")
        }
        Some(n) if !n.is_empty() => authorization.nonce = Some(n.clone()),
        _ => {}
    }
    let prompt = match prompt(query.prompt.as_deref()) {
        Ok(p) => p,
        Err(why) => return refuse(&authorization, AuthorizeErrorCode::InvalidRequest, why),
    };
    let max_age = match query.max_age.as_deref() {
        None => None,
        Some(v) => match v.parse::<u64>() {
            Ok(seconds) => Some(seconds),
            Err(_) => {
                return refuse(
                    &authorization,
                    AuthorizeErrorCode::InvalidRequest,
                    "max_age must be a number of seconds",
                )
            }
        },
    };
    Ok(Checked {
        authorization,
        prompt,
        max_age,
    })
}

fn prompt(value: Option<&str>) -> Result<Prompt, &'static str> {
    let Some(value) = value else {
        return Ok(Prompt::Default);
    };
    let values: Vec<&str> = value.split(' ').filter(|v| !v.is_empty()).collect();
    if values.contains(&"none") {
        return if values.len() == 1 {
            Ok(Prompt::None)
        } else {
            Err("prompt=none cannot be combined with other values")
        };
    }
    // consent and select_account: the bridge asks for neither (nothing to consent to; the
    // account is chosen at the IdP), so they change nothing.
    if values.contains(&"login") {
        Ok(Prompt::Login)
    } else {
        Ok(Prompt::Default)
    }
}

/// The success redirect: `redirect_uri?code=..&state=..&iss=..` (RFC 9207 `iss`).
pub fn code_location(authorization: &Authorization, code: &str, issuer: &str) -> String {
    let mut pairs = vec![("code", code)];
    if let Some(state) = &authorization.state {
        pairs.push(("state", state));
    }
    pairs.push(("iss", issuer));
    with_query(&authorization.redirect_uri, &pairs)
}

/// `uri` with `pairs` appended to its query (a registered URI may have a query of its own).
pub fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (k, v) in pairs {
                    query.append_pair(k, v);
                }
            }
            url.to_string()
        }
        // Registered URIs are checked at load; this is not reached.
        Err(_) => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> OidcClient {
        OidcClient {
            client_id: "numo-web".into(),
            secret: None,
            redirect_uris: vec!["https://numo.example.nl/cb".into()],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            id_token_alg: crate::jws::Alg::Rs256,
        }
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn good() -> String {
        format!(
            "response_type=code&client_id=numo-web&redirect_uri=https%3A%2F%2Fnumo.example.nl%2Fcb&scope=openid&state=s1&nonce=n1&code_challenge={CHALLENGE}&code_challenge_method=S256"
        )
    }

    fn checked(query: &str) -> Result<Checked, Refusal> {
        check(&AuthorizeQuery::parse(query), &client())
    }

    fn redirect_error(query: &str) -> AuthorizeErrorCode {
        match checked(query) {
            Err(Refusal::Redirect(r)) => {
                assert_eq!(r.redirect_uri, "https://numo.example.nl/cb");
                r.error
            }
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn a_good_request_is_checked_with_its_values() {
        let c = checked(&good()).expect("checked");
        assert_eq!(c.authorization.state.as_deref(), Some("s1"));
        assert_eq!(c.authorization.nonce.as_deref(), Some("n1"));
        assert_eq!(c.authorization.code_challenge, CHALLENGE);
        assert_eq!(c.prompt, Prompt::Default);
        assert_eq!(client_id(&AuthorizeQuery::parse(&good())), Ok("numo-web"));
    }

    #[test]
    fn an_unregistered_or_altered_redirect_uri_is_never_redirected_to() {
        for uri in [
            "https%3A%2F%2Fnumo.example.nl%2Fcb%2F",
            "https%3A%2F%2Fnumo.example.nl%2Fcb%3Fx%3D1",
            "https%3A%2F%2Fevil.example%2Fcb",
            "HTTPS%3A%2F%2Fnumo.example.nl%2Fcb",
        ] {
            let q = good().replace("https%3A%2F%2Fnumo.example.nl%2Fcb", uri);
            assert!(
                matches!(
                    checked(&q),
                    Err(Refusal::Page(PageRefusal::RedirectUriNotRegistered(_)))
                ),
                "{uri}"
            );
        }
        let without = good().replace("redirect_uri=https%3A%2F%2Fnumo.example.nl%2Fcb&", "");
        assert!(matches!(checked(&without), Err(Refusal::Page(_))));
        let twice = format!("{}&redirect_uri=https%3A%2F%2Fnumo.example.nl%2Fcb", good());
        assert!(matches!(checked(&twice), Err(Refusal::Page(PageRefusal::Malformed))));
        let two_clients = format!("{}&client_id=other", good());
        assert_eq!(
            client_id(&AuthorizeQuery::parse(&two_clients)),
            Err(PageRefusal::Malformed)
        );
    }

    #[test]
    fn pkce_must_be_s256_with_a_real_challenge() {
        let no_pkce = good().replace(&format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"), "");
        assert_eq!(redirect_error(&no_pkce), AuthorizeErrorCode::InvalidRequest);
        assert_eq!(
            redirect_error(&good().replace("code_challenge_method=S256", "code_challenge_method=plain")),
            AuthorizeErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_error(&good().replace("&code_challenge_method=S256", "")),
            AuthorizeErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_error(&good().replace(CHALLENGE, "short")),
            AuthorizeErrorCode::InvalidRequest
        );
    }

    #[test]
    fn the_other_errors_go_to_the_client_with_its_state() {
        assert_eq!(
            redirect_error(&good().replace("response_type=code", "response_type=token")),
            AuthorizeErrorCode::UnsupportedResponseType
        );
        assert_eq!(
            redirect_error(&good().replace("scope=openid", "scope=profile")),
            AuthorizeErrorCode::InvalidScope
        );
        assert_eq!(
            redirect_error(&format!("{}&request=eyJ", good())),
            AuthorizeErrorCode::RequestNotSupported
        );
        assert_eq!(
            redirect_error(&format!("{}&request_uri=https%3A%2F%2Fx", good())),
            AuthorizeErrorCode::RequestUriNotSupported
        );
        // Empty values count as omitted (RFC 6749 3.1).
        assert!(checked(&format!("{}&max_age=&response_mode=&request=", good())).is_ok());
        assert_eq!(
            redirect_error(&format!("{}&prompt=none+login", good())),
            AuthorizeErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_error(&format!("{}&nonce=2", good())),
            AuthorizeErrorCode::InvalidRequest
        );
        match checked(&good().replace("scope=openid", "scope=x")) {
            Err(Refusal::Redirect(r)) => {
                let location = r.location("https://bridge.example.nl");
                assert!(
                    location.starts_with("https://numo.example.nl/cb?error=invalid_scope&"),
                    "{location}"
                );
                assert!(
                    location.contains("&state=s1&iss=https%3A%2F%2Fbridge.example.nl"),
                    "{location}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn prompt_and_max_age_are_read() {
        assert_eq!(
            checked(&format!("{}&prompt=none", good())).unwrap().prompt,
            Prompt::None
        );
        assert_eq!(
            checked(&format!("{}&prompt=login+consent", good())).unwrap().prompt,
            Prompt::Login
        );
        assert_eq!(checked(&format!("{}&max_age=0", good())).unwrap().max_age, Some(0));
        assert_eq!(
            redirect_error(&format!("{}&max_age=-1", good())),
            AuthorizeErrorCode::InvalidRequest
        );
    }

    #[test]
    fn the_code_goes_back_with_state_and_issuer() {
        let c = checked(&good()).unwrap();
        assert_eq!(
            code_location(&c.authorization, "abc", "http://127.0.0.1:8080"),
            "https://numo.example.nl/cb?code=abc&state=s1&iss=http%3A%2F%2F127.0.0.1%3A8080"
        );
    }
}
