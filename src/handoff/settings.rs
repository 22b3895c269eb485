//! How an app is handed the identity, as handoff's own types: the mode, the token's lifetime,
//! and in headers mode the identity header names and the upstream requests go to. `config`
//! builds them from `[apps.X.handoff]`.

use std::time::Duration;

use axum::http::HeaderName;
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffMode {
    Jwt,
    Headers,
    /// The bridge is the app's OpenID Connect provider.
    Oidc,
}

#[derive(Debug)]
pub struct HandoffSettings {
    pub mode: HandoffMode,
    /// jwt mode: where the app receives the token.
    pub callback_url: Option<Url>,
    pub token_lifetime: Duration,
    /// headers mode: reuse a session's `X-Bridge-Token` for the first half of its lifetime.
    pub token_reuse: bool,
    pub header_names: HeaderNames,
    /// headers mode: where requests go.
    pub upstream: Option<Upstream>,
    /// oidc mode: the app's client registration.
    pub oidc: Option<super::oidc::OidcClient>,
}

/// headers mode: the app's own address and how requests reach it.
#[derive(Debug)]
pub struct Upstream {
    pub url: Url,
    /// The upstream's origin and path without a trailing slash, which each forwarded
    /// request's own path and query follow.
    pub prefix: String,
    /// Extra CA certificates (DER) for an https upstream, besides the system roots.
    pub ca: Vec<Vec<u8>>,
    pub connect_timeout: Duration,
    /// How long to wait for the upstream's response headers.
    pub timeout: Duration,
    /// Forward paths with `;` (path parameters) instead of refusing them.
    pub allow_path_parameters: bool,
}

impl Upstream {
    pub fn new(
        url: Url,
        ca: Vec<Vec<u8>>,
        connect_timeout: Duration,
        timeout: Duration,
        allow_path_parameters: bool,
    ) -> Self {
        let prefix = format!(
            "{}{}",
            url.origin().ascii_serialization(),
            url.path().trim_end_matches('/')
        );
        Upstream {
            url,
            prefix,
            ca,
            connect_timeout,
            timeout,
            allow_path_parameters,
        }
    }
}

/// Identity header names of an app in headers mode, lowercase (as HTTP/2 and hyper carry them).
#[derive(Debug, Clone)]
pub struct HeaderNames {
    pub person_code: HeaderName,
    pub school: HeaderName,
    pub affiliation: HeaderName,
    pub tenant: HeaderName,
    pub token: HeaderName,
    /// The five names with every separator folded to `-`, computed once.
    folded: [String; 5],
}

impl HeaderNames {
    /// The five names, in this order; each must be a valid header name.
    pub fn parse(
        person_code: &str,
        school: &str,
        affiliation: &str,
        tenant: &str,
        token: &str,
    ) -> Result<Self, String> {
        let parse =
            |v: &str| HeaderName::from_bytes(v.as_bytes()).map_err(|_| format!("{v:?} is not a valid header name"));
        let (person_code, school, affiliation, tenant, token) = (
            parse(person_code)?,
            parse(school)?,
            parse(affiliation)?,
            parse(tenant)?,
            parse(token)?,
        );
        let folded = [&person_code, &school, &affiliation, &tenant, &token].map(|n| fold(n.as_str()));
        Ok(HeaderNames {
            person_code,
            school,
            affiliation,
            tenant,
            token,
            folded,
        })
    }

    /// Whether `name` could pass for one of these headers. Every separator is folded to `-`:
    /// CGI and PHP turn `-`, `_` and `.` alike into `_`, so `X_Bridge_Person_Code` and
    /// `X.Bridge.Person.Code` would reach such an app as the real header.
    ///
    /// Asked for every header of every proxied request, so it compares in place: header names
    /// are ASCII by construction, and each byte folds as [`fold`] folds a character.
    pub fn could_pass_for_ours(&self, name: &str) -> bool {
        self.folded
            .iter()
            .any(|ours| ours.len() == name.len() && ours.bytes().zip(name.bytes()).all(|(o, n)| o == fold_byte(n)))
    }
}

fn fold(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn fold_byte(b: u8) -> u8 {
    if b.is_ascii_alphanumeric() {
        b.to_ascii_lowercase()
    } else {
        b'-'
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_fold_every_separator() {
        let names = HeaderNames::parse(
            "X-Bridge-Person-Code",
            "X-Bridge-School",
            "X-Bridge-Affiliation",
            "X-Bridge-Tenant",
            "X-Bridge-Token",
        )
        .expect("names");
        assert_eq!(names.person_code.as_str(), "x-bridge-person-code");
        for spoof in ["x-bridge-person-code", "X_Bridge_Person_Code", "x.bridge.token"] {
            assert!(names.could_pass_for_ours(spoof), "{spoof}");
        }
        assert!(!names.could_pass_for_ours("x-bridge-person"));
        assert!(HeaderNames::parse("bad name", "a", "b", "c", "d").is_err());
    }

    #[test]
    fn the_upstream_prefix_has_no_trailing_slash() {
        let url = Url::parse("http://127.0.0.1:9000/app/").expect("url");
        let upstream = Upstream::new(url, Vec::new(), Duration::from_secs(5), Duration::from_secs(60), false);
        assert_eq!(upstream.prefix, "http://127.0.0.1:9000/app");
    }
}
