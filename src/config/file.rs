//! The config file as written: serde types that mirror the TOML keys of DESIGN.md one to one.
//! Every struct denies unknown keys. Values stay raw strings here (durations, URLs, paths)
//! so that [`super::settings`] can report each bad value by its key path instead of
//! stopping at the first.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub listen: String,
    pub public_base_url: String,
    pub trusted_proxies: Vec<String>,
    /// PEM certificate chain and key to serve https on `listen` (no terminating proxy needed).
    pub tls_cert: String,
    pub tls_key: String,
    /// Per client address, on login, ACS, link completion and logout.
    pub rate_limit: RateLimitSection,
    /// Connections one client address (IPv6: one /64) may hold open at once; 0: no cap.
    /// `trusted_proxies` are not counted (they carry many clients).
    pub max_connections_per_client: u32,
}

/// The default of `server.max_connections_per_client`: a class of 60 browsers behind one
/// school NAT address, each with the 6 connections per host a browser opens, holds 360; the
/// rest is room (two classes at once on a quiet page). Well below the 10,000 of all
/// connections, so one address cannot take the server's.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: u32 = 512;

/// `[server.rate_limit]`. A whole school often reaches the bridge from one address (NAT),
/// and a class logs in at once: the defaults let some 300 students in within seconds and
/// still stop a flood from one address.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSection {
    /// Requests a minute per address, sustained; 0 switches the limit off.
    pub per_minute: u32,
    /// Requests an address may make at once before the rate applies.
    pub burst: u32,
    /// Loopback clients (the demo, a proxy on the same host) are not limited.
    pub exempt_loopback: bool,
}

impl Default for RateLimitSection {
    fn default() -> Self {
        RateLimitSection {
            per_minute: 1200,
            burst: 600,
            exempt_loopback: true,
        }
    }
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:8080".into(),
            public_base_url: String::new(),
            trusted_proxies: Vec::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            rate_limit: RateLimitSection::default(),
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `text` (for people) or `json` (one object per line, for log collectors).
    pub format: String,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection { format: "text".into() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsSection {
    pub store: String,
    pub redis_url: String,
    pub redis_cluster: Vec<String>,
    pub redis_prefix: String,
    /// PEM CA bundle that signs the Redis servers' certificates (`rediss://`); system roots when empty.
    pub redis_ca: String,
    /// Longest a request waits for Redis before it gets the 503 page.
    pub timeout: String,
    /// How long an instance may reuse a session it read from Redis ("0s" = never).
    pub local_cache: String,
    pub lifetime: String,
    pub idle_timeout: String,
}

impl Default for SessionsSection {
    fn default() -> Self {
        SessionsSection {
            store: "memory".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_cluster: Vec::new(),
            redis_prefix: "entree-bridge:".into(),
            redis_ca: String::new(),
            timeout: "2s".into(),
            local_cache: "0s".into(),
            lifetime: "8h".into(),
            idle_timeout: "1h".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinksSection {
    pub store: String,
    pub sqlite_path: String,
    pub postgres_url: String,
    /// Longest a request waits for the link database before it gets the 503 page.
    pub timeout: String,
}

impl Default for LinksSection {
    fn default() -> Self {
        LinksSection {
            store: "sqlite".into(),
            sqlite_path: "data/links.sqlite3".into(),
            postgres_url: String::new(),
            timeout: "3s".into(),
        }
    }
}

/// One path or several: the first key signs, all are published in the JWKS.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    pub jwt_signing_key: OneOrMany,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationSection {
    pub metadata: String,
    #[serde(default)]
    pub metadata_signing_cert: Option<String>,
    #[serde(default)]
    pub idp_entity_id: Option<String>,
    /// Where the last good copy of URL metadata is kept (default `data/metadata-{name}.xml`).
    #[serde(default)]
    pub metadata_cache: Option<String>,
    #[serde(default = "default_refresh")]
    pub refresh_interval: String,
    /// The longest one refresh of URL metadata may take, fetch, pre-scan, parse and signature
    /// check together; beyond it the refresh counts as failed and the last good copy serves on.
    #[serde(default = "default_refresh_timeout")]
    pub refresh_timeout: String,
    #[serde(default)]
    pub allow_sha1: bool,
    /// AES-CBC encrypted assertions in an unsigned Response (opt-in: a padding-oracle risk).
    #[serde(default)]
    pub allow_cbc: bool,
    /// URL metadata must carry validUntil (false: its signature and refresh_interval suffice).
    #[serde(default = "default_true")]
    pub require_valid_until: bool,
    #[serde(default = "default_skew")]
    pub clock_skew: String,
}

fn default_true() -> bool {
    true
}

fn default_refresh() -> String {
    "1h".into()
}

fn default_refresh_timeout() -> String {
    "60s".into()
}

fn default_skew() -> String {
    "2m".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSection {
    pub federation: String,
    pub base_url: String,
    #[serde(default)]
    pub sp_entity_id: Option<String>,
    pub sp_key: String,
    pub sp_cert: String,
    /// The next SP key pair during a rollover: published beside the current one and accepted
    /// for decryption, until it is promoted to `sp_key`/`sp_cert`.
    #[serde(default)]
    pub sp_key_next: Option<String>,
    #[serde(default)]
    pub sp_cert_next: Option<String>,
    #[serde(default)]
    pub schools: Vec<String>,
    /// Shown to a school that has not activated the app: an email address or an https URL.
    #[serde(default)]
    pub activation_contact: Option<String>,
    #[serde(default)]
    pub allowed_targets: Vec<String>,
    #[serde(default)]
    pub allow_unsolicited: bool,
    #[serde(default)]
    pub post_logout_url: Option<String>,
    /// Shown on pages and in the SP metadata's service name; defaults to the app's key.
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub tenants: BTreeMap<String, String>,
    #[serde(default)]
    pub person: PersonSection,
    #[serde(default)]
    pub handoff: HandoffSection,
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    #[serde(default)]
    pub organization: Option<OrganizationSection>,
    #[serde(default)]
    pub contacts: Vec<ContactSection>,
    #[serde(default)]
    pub branding: BrandingSection,
}

/// `[apps.X.branding]`: what the student's pages show of the app besides its name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrandingSection {
    /// A PNG, JPEG, WebP or SVG file, served at `{base}/saml2/{federation}/logo`.
    pub logo: Option<String>,
    /// Links and buttons: `#rrggbb`, at least 4.5:1 on white.
    pub accent: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersonSection {
    pub attribute: String,
    pub pattern: Option<String>,
    pub linking: bool,
    pub link_url: Option<String>,
    pub link_secret: Option<String>,
    /// `warn` or `refuse`: a link that would join a student's and an employee's federated ids
    /// under one person code.
    pub mixed_affiliations: String,
}

impl Default for PersonSection {
    fn default() -> Self {
        PersonSection {
            attribute: "nlEduPersonRealId".into(),
            pattern: None,
            linking: false,
            link_url: None,
            link_secret: None,
            mixed_affiliations: "warn".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HandoffSection {
    pub mode: String,
    pub callback_url: Option<String>,
    pub upstream: Option<String>,
    /// Default: 60s; in oidc mode 5m (the id_token's and access token's lifetime).
    pub token_lifetime: Option<String>,
    /// headers mode: sign `X-Bridge-Token` once per session and send it again while more
    /// than half its lifetime is left (false: a new token, with a new jti, on every request).
    pub token_reuse: bool,
    /// headers mode: how long to wait for a connection to the upstream.
    pub connect_timeout: String,
    /// headers mode: how long to wait for the upstream's response headers.
    pub upstream_timeout: String,
    /// headers mode: the identity header names.
    pub headers: HeaderNamesSection,
    /// headers mode, https upstream: a PEM file of CA certificates to trust besides the
    /// system roots (an internal CA).
    pub upstream_ca: Option<String>,
    /// headers mode: forward paths with path parameters (`;`, raw or `%3b`). Off: refused,
    /// because servlet containers cut a segment at `;` and so route differently.
    pub allow_path_parameters: bool,
    /// oidc mode: the client's id (default: the app's name).
    pub client_id: Option<String>,
    /// oidc mode: the client's secret (at least 32 characters); absent: a public client.
    pub client_secret: Option<String>,
    /// oidc mode: the exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// oidc mode: where RP-initiated logout may return to.
    pub post_logout_redirect_uris: Vec<String>,
    /// oidc mode: where Back-Channel Logout tokens go.
    pub backchannel_logout_uri: Option<String>,
    /// oidc mode: "RS256" (default) or "ES256", as OIDC client registration names it.
    pub id_token_signed_response_alg: Option<String>,
}

/// Identity header names (headers mode); DESIGN.md's defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderNamesSection {
    pub person_code: String,
    pub school: String,
    pub affiliation: String,
    pub tenant: String,
    pub token: String,
}

impl Default for HeaderNamesSection {
    fn default() -> Self {
        HeaderNamesSection {
            person_code: "X-Bridge-Person-Code".into(),
            school: "X-Bridge-School".into(),
            affiliation: "X-Bridge-Affiliation".into(),
            tenant: "X-Bridge-Tenant".into(),
            token: "X-Bridge-Token".into(),
        }
    }
}

impl Default for HandoffSection {
    fn default() -> Self {
        HandoffSection {
            mode: "jwt".into(),
            callback_url: None,
            upstream: None,
            token_lifetime: None,
            token_reuse: true,
            connect_timeout: "5s".into(),
            upstream_timeout: "60s".into(),
            headers: HeaderNamesSection::default(),
            upstream_ca: None,
            allow_path_parameters: false,
            client_id: None,
            client_secret: None,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            backchannel_logout_uri: None,
            id_token_signed_response_alg: None,
        }
    }
}

/// `<md:Organization>` in the SP metadata.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationSection {
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    pub url: String,
}

/// `<md:ContactPerson>` in the SP metadata.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactSection {
    #[serde(rename = "type")]
    pub contact_type: String,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub sur_name: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
    pub email: String,
}
