//! The bridge's routes as types, parsed once per request: the global routes, and below each
//! app's base path the SAML routes under `/saml2/{federation}/` or the app's own paths (proxied
//! in headers mode). Everything else in `http` matches on these, never on path strings, and
//! the paths (and the refusal of paths an upstream could read differently) live only here.

use axum::http::Method;

use crate::config::App;

/// The routes outside every app, the same on every host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobalRoute {
    Healthz,
    Readyz,
    Metrics,
    Jwks,
    /// The OpenID Connect provider's (oidc mode).
    OidcDiscovery,
    OidcAuthorize,
    OidcToken,
    OidcUserinfo,
    OidcLogout,
}

impl GlobalRoute {
    pub const ALL: [GlobalRoute; 9] = [
        GlobalRoute::Healthz,
        GlobalRoute::Readyz,
        GlobalRoute::Metrics,
        GlobalRoute::Jwks,
        GlobalRoute::OidcDiscovery,
        GlobalRoute::OidcAuthorize,
        GlobalRoute::OidcToken,
        GlobalRoute::OidcUserinfo,
        GlobalRoute::OidcLogout,
    ];

    /// The absolute path the route is served at (GET, except the token endpoint's POST and
    /// userinfo's GET and POST).
    pub fn path(self) -> &'static str {
        use crate::handoff::oidc::discovery as oidc;
        match self {
            GlobalRoute::Healthz => "/healthz",
            GlobalRoute::Readyz => "/readyz",
            GlobalRoute::Metrics => "/metrics",
            GlobalRoute::Jwks => oidc::JWKS_PATH,
            GlobalRoute::OidcDiscovery => oidc::DISCOVERY_PATH,
            GlobalRoute::OidcAuthorize => oidc::AUTHORIZE_PATH,
            GlobalRoute::OidcToken => oidc::TOKEN_PATH,
            GlobalRoute::OidcUserinfo => oidc::USERINFO_PATH,
            GlobalRoute::OidcLogout => oidc::LOGOUT_PATH,
        }
    }
}

/// The per-app SAML routes, below `{base}/saml2/{federation}/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamlRoute {
    Metadata,
    Login,
    Acs,
    LinkCompletion,
    Logout,
    Sls,
    /// The app's logo (`[apps.X.branding] logo`), on its pages.
    Logo,
}

impl SamlRoute {
    pub const ALL: [SamlRoute; 7] = [
        SamlRoute::Metadata,
        SamlRoute::Login,
        SamlRoute::Acs,
        SamlRoute::LinkCompletion,
        SamlRoute::Logout,
        SamlRoute::Sls,
        SamlRoute::Logo,
    ];

    /// The route's path below `/saml2/{federation}/` (what `App::route_url` takes).
    pub fn path(self) -> &'static str {
        match self {
            SamlRoute::Metadata => "metadata",
            SamlRoute::Login => "login",
            SamlRoute::Acs => "acs",
            SamlRoute::LinkCompletion => "link/complete",
            SamlRoute::Logout => "logout",
            SamlRoute::Sls => "sls",
            SamlRoute::Logo => "logo",
        }
    }

    /// The route's absolute URL for `app` (`{base}/saml2/{federation}/{path}`).
    pub fn url(self, app: &App) -> String {
        app.route_url(self.path())
    }

    /// The one method the route answers.
    pub fn method(self) -> Method {
        match self {
            SamlRoute::Acs => Method::POST,
            _ => Method::GET,
        }
    }

    /// Whether HEAD is answered as GET (without the body): the routes that only read, so a
    /// cache or a monitor may ask for their headers.
    pub fn answers_head(self) -> bool {
        matches!(self, SamlRoute::Metadata | SamlRoute::Logo)
    }

    /// Whether another method is answered 405 (link completion answers it as an unknown
    /// address, as it does when the app has no linking).
    pub fn refuses_other_methods(self) -> bool {
        self != SamlRoute::LinkCompletion
    }

    /// The routes that make the bridge sign, verify or store something: limited per client
    /// address.
    pub fn rate_limited(self) -> bool {
        !matches!(self, SamlRoute::Metadata | SamlRoute::Logo)
    }
}

/// Where a path below an app's base leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppRoute {
    Saml(SamlRoute),
    /// Below `/saml2/` but no route of this app's federation: never proxied, answered as an
    /// unknown address.
    UnknownSaml,
    /// The app's own path: proxied to its upstream in headers mode.
    App,
}

impl AppRoute {
    /// `rest` is the path below the app's base (`/saml2/kennisnet/acs`).
    pub fn parse(rest: &str, federation: &str) -> AppRoute {
        let Some(below_saml) = rest.strip_prefix("/saml2/") else {
            return AppRoute::App;
        };
        let route = below_saml
            .strip_prefix(federation)
            .and_then(|r| r.strip_prefix('/'))
            .and_then(|r| SamlRoute::ALL.into_iter().find(|route| route.path() == r));
        match route {
            Some(route) => AppRoute::Saml(route),
            None => AppRoute::UnknownSaml,
        }
    }
}

/// Paths with dot segments (plain or percent-encoded), encoded slashes or backslashes are
/// refused before anything routes on them: an upstream that normalises them would otherwise
/// serve something outside the app the session was checked for. Runs on every request, so it
/// reads the bytes as they are rather than a lowercased copy.
pub fn safe_path(path: &str) -> bool {
    if path.contains('\\') {
        return false;
    }
    let encoded_forbidden = path.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1], w[2].to_ascii_lowercase()),
                (b'2', b'f') | (b'5', b'c') | (b'0', b'0')
            )
    });
    !encoded_forbidden && !path.split('/').any(is_dot_segment)
}

/// `.` or `..`, each dot possibly written `%2e` (any case), with or without path parameters:
/// Tomcat, Jetty and other servlet containers drop everything from a `;` (or a decoded
/// `%3b`) to the end of a segment before they normalise, so `..;x` is `..` to them.
fn is_dot_segment(segment: &str) -> bool {
    let (mut rest, mut dots) = (before_parameters(segment), 0);
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            rest = after;
        } else if rest.len() >= 3 && rest.is_char_boundary(3) && rest[..3].eq_ignore_ascii_case("%2e") {
            rest = &rest[3..];
        } else {
            return false;
        }
        dots += 1;
        if dots > 2 {
            return false;
        }
    }
    dots > 0
}

/// The part of a segment before its first `;`, raw or percent-encoded.
fn before_parameters(segment: &str) -> &str {
    let bytes = segment.as_bytes();
    let end = (0..bytes.len())
        .find(|&i| {
            bytes[i] == b';'
                || (bytes[i] == b'%'
                    && bytes.get(i + 1) == Some(&b'3')
                    && matches!(bytes.get(i + 2), Some(b'b' | b'B')))
        })
        .unwrap_or(bytes.len());
    // `end` is at an ASCII byte or the end, so a char boundary.
    &segment[..end]
}

/// Whether `path` has a path parameter (`;`, raw or percent-encoded) in any segment.
pub fn has_path_parameters(path: &str) -> bool {
    path.split('/')
        .any(|segment| before_parameters(segment).len() != segment.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_and_encoded_separators_are_refused_in_any_spelling() {
        for bad in [
            "/app/../admin",
            "/app/./x",
            "/app/%2e%2E/admin",
            "/app/.%2e",
            "/app/%2E",
            "/app/a%2Fb",
            "/app/a%2fb",
            "/app/a%5Cb",
            "/app/a\\b",
            "/app/a%00",
            "/..",
            "/app/..;/admin/x",
            "/app/.;/x",
            "/app/%2e%2e;/admin",
            "/app/..%3b/admin",
            "/app/..%3B",
            "/app/.%2E;jsessionid=1/x",
            "/app/..;",
        ] {
            assert!(!safe_path(bad), "{bad}");
        }
        for good in [
            "/",
            "/app/echo",
            "/app/.well-known/x",
            "/app/...",
            "/app/a.b",
            "/app/%2e%2e%2e",
            "/app/é/%41",
            "/app/a;b",
            "/app/...;x",
            "/app/x.;y",
        ] {
            assert!(safe_path(good), "{good}");
        }
    }

    #[test]
    fn path_parameters_are_found_raw_and_encoded() {
        for with in ["/a;b", "/a/b;", "/a%3bb/c", "/a%3B", "/;"] {
            assert!(has_path_parameters(with), "{with}");
        }
        for without in ["/", "/a/b", "/a%3", "/a%3c", "/a%2b"] {
            assert!(!has_path_parameters(without), "{without}");
        }
    }

    #[test]
    fn saml_routes_are_recognised_only_under_their_federation() {
        let parse = |rest| AppRoute::parse(rest, "kennisnet");
        assert_eq!(parse("/saml2/kennisnet/acs"), AppRoute::Saml(SamlRoute::Acs));
        assert_eq!(
            parse("/saml2/kennisnet/link/complete"),
            AppRoute::Saml(SamlRoute::LinkCompletion)
        );
        assert_eq!(parse("/saml2/kennisnet/nope"), AppRoute::UnknownSaml);
        assert_eq!(parse("/saml2/kennisnet"), AppRoute::UnknownSaml);
        assert_eq!(parse("/saml2/kennisnetx/acs"), AppRoute::UnknownSaml);
        assert_eq!(parse("/saml2/other/acs"), AppRoute::UnknownSaml);
        assert_eq!(parse("/echo"), AppRoute::App);
        assert_eq!(parse("/saml2"), AppRoute::App);
        assert_eq!(parse(""), AppRoute::App);
    }

    #[test]
    fn every_saml_route_parses_back_from_its_path() {
        for route in SamlRoute::ALL {
            let rest = format!("/saml2/kennisnet/{}", route.path());
            assert_eq!(AppRoute::parse(&rest, "kennisnet"), AppRoute::Saml(route));
        }
        let global: std::collections::BTreeSet<_> = GlobalRoute::ALL.iter().map(|r| r.path()).collect();
        assert_eq!(global.len(), GlobalRoute::ALL.len());
    }
}
