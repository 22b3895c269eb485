//! `[apps.NAME]` (or `apps/NAME.toml`): one downstream app, built from the settings of each
//! module it involves (saml's SP, identity's policy, handoff's settings) plus what only the
//! HTTP side needs (its base URL, host, path, origins and cookie names).

pub mod branding;
mod handoff;
mod identity;
pub use identity::check_contact;
mod sp;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use url::Url;

use super::federations::Federation;
use super::file::AppSection;
use super::parse::parse_http_url;
use super::problems::Collector;
use crate::handoff::HandoffSettings;
use crate::identity::Policy;
use crate::saml::settings::{SpDescription, SpSettings};

/// The name of an app's session cookie (headers mode) starts with this.
pub const SESSION_COOKIE_PREFIX: &str = "eb_session_";

#[derive(Debug)]
pub struct App {
    pub name: String,
    pub display_name: String,
    pub federation: Arc<Federation>,
    pub base_url: Url,
    /// `host[:port]` as a browser sends it in the Host header (default ports omitted).
    pub host: String,
    /// The base URL's path without a trailing slash ("" for the root).
    pub path_prefix: String,
    pub allowed_origins: Vec<url::Origin>,
    pub post_logout_url: Option<Url>,
    /// True when the app's base URL is https (`__Host-` Secure cookies, SameSite=None).
    pub secure: bool,
    /// The session cookie's name (headers mode, and the OP session of oidc mode): under https
    /// a `__Host-` cookie.
    pub session_cookie: String,
    /// The app as a SAML service provider.
    pub sp: SpSettings,
    /// Who may log in and how the person code is found.
    pub identity: Policy,
    /// How the app is handed the identity.
    pub handoff: HandoffSettings,
    /// Its logo and accent colour on the student's pages.
    pub branding: branding::Branding,
}

impl App {
    /// `{base path}/saml2/{federation}`: every SAML route of this app lives below it.
    pub fn saml_path(&self) -> String {
        format!("{}/saml2/{}", self.path_prefix, self.federation.name)
    }

    /// Where the app itself lives, for a page's "to the app" link: `post_logout_url` when
    /// set, else the proxied app (headers), the origin of the callback (jwt) or of the first
    /// redirect URI (oidc), each as the admin configured it.
    pub fn home_url(&self) -> String {
        if let Some(url) = &self.post_logout_url {
            return url.to_string();
        }
        let origin_of = |url: &Url| format!("{}/", url.origin().ascii_serialization());
        let home = match self.handoff.mode {
            crate::handoff::HandoffMode::Headers => None,
            crate::handoff::HandoffMode::Jwt => self.handoff.callback_url.as_ref().map(origin_of),
            crate::handoff::HandoffMode::Oidc => self
                .handoff
                .oidc
                .as_ref()
                .and_then(|c| c.redirect_uris.first())
                .and_then(|u| Url::parse(u).ok())
                .map(|u| origin_of(&u)),
        };
        home.unwrap_or_else(|| self.base_url.to_string())
    }

    /// Whom a student or school asks for help, as the config names it: the SP metadata's
    /// `support` contact's email, else `activation_contact`.
    pub fn help_contact(&self) -> Option<&str> {
        self.sp
            .description
            .contacts
            .iter()
            .find(|c| c.contact_type == "support")
            .map(|c| c.email.trim_start_matches("mailto:"))
            .or(self.identity.activation_contact.as_deref())
    }

    /// Absolute URL of one of this app's SAML routes.
    pub fn route_url(&self, route: &str) -> String {
        let mut url = self.base_url.clone();
        url.set_path(&format!("{}/{}", self.saml_path(), route));
        url.to_string()
    }
}

pub(super) fn build_app(
    name: &str,
    a: AppSection,
    federations: &BTreeMap<String, Arc<Federation>>,
    base: &Path,
    c: &mut Collector<'_>,
) -> Option<App> {
    let key = |k: &str| format!("apps.{name}.{k}");
    // A missing federation is the caller's to report (it knows which are configured).
    let federation = federations.get(&a.federation).cloned();
    let base_url = c.take(&key("base_url"), parse_http_url(&a.base_url));
    let (sp_key, sp_cert, sp_next) = sp::load_keys(&a, &key, base, c);
    let handoff = handoff::build_handoff(name, &a.handoff, &key, base, c);
    let mut allowed_origins = allowed_origins(&a, base_url.as_ref(), &key, c);
    // oidc mode: the app lives at its redirect URIs' origins (its base_url is the bridge's),
    // so a target or post-logout URL there is the app's own.
    if let Some(client) = handoff.as_ref().and_then(|h| h.oidc.as_ref()) {
        for uri in &client.redirect_uris {
            if let Ok(url) = url::Url::parse(uri) {
                if !allowed_origins.contains(&url.origin()) {
                    allowed_origins.push(url.origin());
                }
            }
        }
    }
    // Like a target: only the app's own origin or an allowlisted one (no open redirect).
    let post_logout_url = a.post_logout_url.as_deref().and_then(|u| {
        let url = c.take(&key("post_logout_url"), parse_http_url(u))?;
        if allowed_origins.contains(&url.origin()) {
            Some(url)
        } else {
            c.add(
                key("post_logout_url"),
                format!("{u:?} is not on the app's origin or an allowed_targets origin"),
            );
            None
        }
    });
    let policy = identity::build_policy(&a, &key, c);
    let branding = branding::build_branding(&a.branding, &key, base, c);
    let sp_entity_id = match (&a.sp_entity_id, &base_url) {
        (Some(id), _) if !id.trim().is_empty() => id.clone(),
        (_, Some(b)) => route(b, &a.federation, "metadata"),
        _ => String::new(),
    };
    let (Some(federation), Some(base_url), Some(sp_key), Some(sp_cert), Some(sp_next), Some(handoff)) =
        (federation, base_url, sp_key, sp_cert, sp_next, handoff)
    else {
        return None;
    };
    let decryption_keys = std::iter::once(sp_key.clone())
        .chain(sp_next.as_ref().map(|(k, _)| k.clone()))
        .collect();
    let host = match base_url.port() {
        Some(p) => format!("{}:{p}", base_url.host_str().unwrap_or_default()),
        None => base_url.host_str().unwrap_or_default().to_string(),
    }
    .to_ascii_lowercase();
    let display_name = a.display_name.clone().unwrap_or_else(|| name.to_string());
    let secure = base_url.scheme() == "https";
    let sp = SpSettings {
        entity_id: sp_entity_id,
        acs_url: route(&base_url, &federation.name, "acs"),
        sls_url: route(&base_url, &federation.name, "sls"),
        key: sp_key,
        cert: sp_cert,
        next: sp_next,
        decryption_keys,
        allow_unsolicited: a.allow_unsolicited,
        description: SpDescription {
            service_name: display_name.clone(),
            requested_attributes: policy.used_attributes(),
            required_attribute: policy.person_attribute.clone(),
            organization: a.organization.as_ref().map(sp::organization),
            contacts: a.contacts.iter().map(sp::contact).collect(),
        },
    };
    Some(App {
        name: name.to_string(),
        display_name,
        federation,
        host,
        path_prefix: base_url.path().trim_end_matches('/').to_string(),
        allowed_origins,
        post_logout_url,
        secure,
        session_cookie: if secure {
            format!("__Host-{SESSION_COOKIE_PREFIX}{name}")
        } else {
            format!("{SESSION_COOKIE_PREFIX}{name}")
        },
        sp,
        identity: policy,
        handoff,
        branding,
        base_url,
    })
}

/// The app's own origin first, then each of `allowed_targets` (origins without a path).
fn allowed_origins(
    a: &AppSection,
    base_url: Option<&Url>,
    key: &dyn Fn(&str) -> String,
    c: &mut Collector<'_>,
) -> Vec<url::Origin> {
    let mut allowed_origins = Vec::new();
    for t in &a.allowed_targets {
        match parse_http_url(t) {
            Ok(u) if u.path() == "/" => allowed_origins.push(u.origin()),
            Ok(_) => c.add(
                key("allowed_targets"),
                format!("{t:?} must be an origin (scheme://host[:port]) without a path"),
            ),
            Err(e) => c.add(key("allowed_targets"), e),
        }
    }
    if let Some(b) = base_url {
        allowed_origins.insert(0, b.origin());
    }
    allowed_origins
}

/// What an app in oidc mode needs of the rest of the config: an RSA key for its RS256
/// id_tokens, and its SAML routes on the bridge's own origin, where the OP's cookies live
/// (the authorize endpoint sets the login cookie the ACS reads, and reads the session the
/// ACS starts).
pub(super) fn check_oidc_apps(
    apps: &[Arc<App>],
    public_base_url: Option<&Url>,
    jwt_keys: Option<&crate::handoff::jwt::SigningKeys>,
    c: &mut Collector<'_>,
) {
    let oidc: Vec<(&Arc<App>, &crate::handoff::oidc::OidcClient)> = apps
        .iter()
        .filter_map(|a| a.handoff.oidc.as_ref().map(|c| (a, c)))
        .collect();
    if let Some(keys) = jwt_keys {
        for alg in [crate::jws::Alg::Rs256, crate::jws::Alg::Es256] {
            let Some((first, _)) = oidc.iter().find(|(_, c)| c.id_token_alg == alg) else {
                continue;
            };
            if !keys.has(alg) {
                let (kind, how) = match alg {
                    crate::jws::Alg::Es256 => ("an EC P-256", "`entree-bridge keygen --type ec`"),
                    _ => ("an RSA", "`entree-bridge keygen --type rsa`"),
                };
                c.add(
                    "keys.jwt_signing_key",
                    format!(
                        "apps.{} uses oidc, whose id_tokens are {}: list {kind} key ({how} makes one)",
                        first.name,
                        alg.name()
                    ),
                );
            }
        }
    }
    for (app, client) in &oidc {
        // An id_token is shaped as a jwt-mode hand-off token (iss, aud, sub): with `aud` the
        // name of another app, the client could log in to that app with it.
        if let Some(other) = apps.iter().find(|a| a.name == client.client_id && a.name != app.name) {
            c.add(
                format!("apps.{}.handoff.client_id", app.name),
                format!(
                    "{:?} is the name of apps.{}: its id_tokens would pass for that app's hand-off tokens",
                    client.client_id, other.name
                ),
            );
        }
        // An unsolicited login would start an OP session that no authorization request of
        // this browser asked for (login CSRF: the student's app signed in as someone else).
        if app.sp.allow_unsolicited {
            c.add(
                format!("apps.{}.allow_unsolicited", app.name),
                "cannot be used in oidc mode: every login must answer an authorization request or an elo link of this browser",
            );
        }
    }
    let Some(issuer) = public_base_url else { return };
    if !oidc.is_empty() && issuer.path() != "/" {
        c.add(
            "server.public_base_url",
            format!(
                "is the OpenID Connect issuer of apps.{} and may not have a path (the /oidc/ and /.well-known/ endpoints are at the root)",
                oidc[0].0.name
            ),
        );
    }
    for (app, _) in oidc {
        if app.base_url.origin() != issuer.origin() {
            c.add(
                format!("apps.{}.base_url", app.name),
                format!(
                    "an oidc app's SAML routes live on the bridge's own origin ({}), e.g. {}/{}: the OpenID Connect endpoints and the login share its cookies",
                    issuer.origin().ascii_serialization(),
                    issuer.as_str().trim_end_matches('/'),
                    app.name
                ),
            );
        }
    }
}

fn route(base: &Url, federation: &str, action: &str) -> String {
    let mut url = base.clone();
    url.set_path(&format!(
        "{}/saml2/{federation}/{action}",
        base.path().trim_end_matches('/')
    ));
    url.to_string()
}

pub(super) fn check_unique_routes(apps: &[Arc<App>], c: &mut Collector<'_>) {
    for (i, a) in apps.iter().enumerate() {
        for b in &apps[i + 1..] {
            if let (Some(x), Some(y)) = (&a.handoff.oidc, &b.handoff.oidc) {
                if x.client_id == y.client_id {
                    c.add(
                        format!("apps.{}.handoff.client_id", b.name),
                        format!(
                            "{:?} is apps.{}'s client_id too; each client is one app",
                            y.client_id, a.name
                        ),
                    );
                }
            }
            if a.host == b.host && a.saml_path() == b.saml_path() {
                c.add(
                    format!("apps.{}.base_url", b.name),
                    format!(
                        "serves the same routes as apps.{} (same host, path and federation)",
                        a.name
                    ),
                );
            }
            if a.sp.entity_id == b.sp.entity_id {
                c.add(
                    format!("apps.{}.sp_entity_id", b.name),
                    format!("is the same as apps.{}'s; each app is its own SP entity", a.name),
                );
            }
        }
    }
}
