//! From the raw file to [`Settings`]: every key checked, every key and certificate loaded,
//! every IdP metadata file read. Problems are collected, not returned at the first.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use figment::{Figment, Provider};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use regex::Regex;
use serde::de::DeserializeOwned;
use url::Url;

use super::file::*;
use super::problems::{Collector, ConfigErrors};
use crate::handoff::jwt::SigningKeys;
use crate::saml::attributes;
use crate::saml::idp_metadata::{self, IdpDescriptor};

/// The validated, loaded configuration the server runs on.
#[derive(Debug)]
pub struct Settings {
    pub source: Option<PathBuf>,
    pub listen: SocketAddr,
    pub public_base_url: Url,
    pub session_store: super::stores::SessionBackend,
    pub log_format: LogFormat,
    /// https on `listen` (`server.tls_cert`/`server.tls_key`); `None` serves plain http.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Absolute and idle lifetime of app sessions (headers mode).
    pub session_lifetime: Duration,
    pub session_idle: Duration,
    /// Peers whose X-Forwarded-* headers are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// `[server.rate_limit]`, checked.
    pub rate_limit: RateLimit,
    /// `server.max_connections_per_client` (0: no cap).
    pub max_connections_per_client: u32,
    /// What is allowed but unsafe (key files others can read), for `check-config` and the
    /// start-up log.
    pub warnings: Vec<String>,
    pub links: LinksTarget,
    /// Longest a request waits for the link database.
    pub links_timeout: Duration,
    pub jwt_keys: SigningKeys,
    /// Keyed pseudonyms for ids in logs.
    pub pseudonyms: crate::identity::Pseudonyms,
    pub federations: BTreeMap<String, Arc<Federation>>,
    pub apps: Vec<Arc<App>>,
}

/// How log lines are written (`log.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Requests per client address on the routes that make the bridge work (`[server.rate_limit]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// 0: no limit.
    pub per_minute: u32,
    pub burst: u32,
    pub exempt_loopback: bool,
}

/// Where account links live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinksTarget {
    Sqlite(PathBuf),
    Postgres(String),
}

/// Identity header names of an app in headers mode, lowercase (as HTTP/2 and hyper carry them).
#[derive(Debug, Clone)]
pub struct HeaderNames {
    pub person_code: axum::http::HeaderName,
    pub school: axum::http::HeaderName,
    pub affiliation: axum::http::HeaderName,
    pub tenant: axum::http::HeaderName,
    pub token: axum::http::HeaderName,
    /// The five names with every separator folded to `-`, computed once.
    folded: [String; 5],
}

impl HeaderNames {
    fn from_section(s: &HeaderNamesSection) -> Result<Self, String> {
        let parse = |v: &str| {
            axum::http::HeaderName::from_bytes(v.as_bytes()).map_err(|_| format!("{v:?} is not a valid header name"))
        };
        let (person_code, school, affiliation, tenant, token) = (
            parse(&s.person_code)?,
            parse(&s.school)?,
            parse(&s.affiliation)?,
            parse(&s.tenant)?,
            parse(&s.token)?,
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

/// An IP network (`10.0.0.0/8`, `::1/128`, or a single address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: std::net::IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: std::net::IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has a bad prefix length"))?,
            None => max,
        };
        Ok(Cidr { network, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.network, ip) {
            (std::net::IpAddr::V4(n), std::net::IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (std::net::IpAddr::V6(n), std::net::IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// First-time account linking for an app (`person.linking = true`).
pub struct Linking {
    pub url: Url,
    pub secret: Vec<u8>,
}

/// The secret never reaches a log line, whoever prints the config.
impl std::fmt::Debug for Linking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Linking")
            .field("url", &self.url.as_str())
            .field("secret", &format_args!("({} bytes, redacted)", self.secret.len()))
            .finish()
    }
}

#[derive(Debug)]
pub struct Federation {
    pub name: String,
    pub source: MetadataSource,
    /// `idp_entity_id`, to pick the IdP out of metadata that lists several.
    pub idp_entity_id: Option<String>,
    /// The IdP metadata in force: from the file, or the last good copy from the URL.
    idp: arc_swap::ArcSwapOption<IdpDescriptor>,
    pub allow_sha1: bool,
    /// `allow_cbc`: AES-CBC assertions accepted in an unsigned Response (default false).
    pub allow_cbc: bool,
    /// `require_valid_until`: fetched metadata without validUntil is refused (default true).
    pub require_valid_until: bool,
    pub clock_skew: Duration,
    /// When the refresher should fetch a URL source next (unix seconds; 0: at once).
    pub next_fetch: std::sync::atomic::AtomicI64,
    /// Why the last fetch of a URL source was refused (cleared by a good one), so that
    /// `/readyz` can say more than "not fetched yet" while no copy is in force.
    last_refusal: std::sync::Mutex<Option<String>>,
}

/// Where a federation's IdP metadata comes from.
#[derive(Debug, Clone)]
pub enum MetadataSource {
    File(PathBuf),
    /// Fetched and refreshed; trusted only when signed by `signing_certs`. The last good copy
    /// is kept in `cache`, so a restart during an outage still has it.
    Url {
        url: Url,
        signing_certs: Vec<samael::crypto::CertificateDer>,
        cache: PathBuf,
        refresh_interval: Duration,
        /// The deadline of one whole refresh (fetch, pre-scan, parse, signature).
        refresh_timeout: Duration,
    },
}

/// Why a federation has no usable IdP metadata right now (logins fail closed).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum MetadataUnavailable {
    #[error("no IdP metadata of federation {0} has been fetched yet")]
    NotYet(String),
    #[error("no IdP metadata of federation {0} is in force: the last fetch was refused: {1}")]
    Refused(String, String),
    #[error("the IdP metadata of federation {0} expired at {1} (validUntil) and no fresh copy is in")]
    Expired(String, String),
}

impl Federation {
    pub fn new(
        name: &str,
        source: MetadataSource,
        idp: Option<IdpDescriptor>,
        idp_entity_id: Option<String>,
        allow_sha1: bool,
        clock_skew: Duration,
    ) -> Self {
        Federation {
            name: name.to_string(),
            source,
            idp_entity_id,
            idp: arc_swap::ArcSwapOption::from(idp.map(Arc::new)),
            allow_sha1,
            allow_cbc: false,
            require_valid_until: true,
            clock_skew,
            next_fetch: std::sync::atomic::AtomicI64::new(0),
            last_refusal: std::sync::Mutex::new(None),
        }
    }

    /// Records why a fetch was refused (`None`: the last one was good).
    pub fn note_refusal(&self, reason: Option<String>) {
        if let Ok(mut last) = self.last_refusal.lock() {
            *last = reason;
        }
    }

    /// The IdP metadata to trust now: present and within its validUntil, or an error that
    /// makes the login fail closed.
    pub fn idp(&self) -> Result<Arc<IdpDescriptor>, MetadataUnavailable> {
        let idp = self
            .idp
            .load_full()
            .ok_or_else(|| match self.last_refusal.lock().ok().and_then(|r| r.clone()) {
                Some(reason) => MetadataUnavailable::Refused(self.name.clone(), reason),
                None => MetadataUnavailable::NotYet(self.name.clone()),
            })?;
        match idp.valid_until {
            Some(until) if until <= chrono::Utc::now() => {
                Err(MetadataUnavailable::Expired(self.name.clone(), until.to_rfc3339()))
            }
            _ => Ok(idp),
        }
    }

    /// The last copy, valid or not (for summaries and the refresher).
    pub fn last_known(&self) -> Option<Arc<IdpDescriptor>> {
        self.idp.load_full()
    }

    /// Puts a freshly fetched, verified copy in force.
    pub fn install(&self, idp: IdpDescriptor) {
        self.idp.store(Some(Arc::new(idp)));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffMode {
    Jwt,
    Headers,
}

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
    pub sp_entity_id: String,
    pub acs_url: String,
    pub sp_key: PKey<Private>,
    pub sp_cert: X509,
    /// The next key pair of a rollover (`sp_key_next`/`sp_cert_next`).
    pub sp_next: Option<(PKey<Private>, X509)>,
    /// The keys an encrypted assertion may be encrypted to: the current one, then the next.
    pub decryption_keys: Vec<PKey<Private>>,
    pub schools: Vec<String>,
    pub allowed_origins: Vec<url::Origin>,
    pub allow_unsolicited: bool,
    pub post_logout_url: Option<Url>,
    pub tenants: BTreeMap<String, String>,
    pub person_attribute: String,
    pub person_pattern: Option<Regex>,
    pub linking: Option<Linking>,
    pub handoff: HandoffMode,
    pub callback_url: Option<Url>,
    pub token_lifetime: Duration,
    /// headers mode: reuse a session's `X-Bridge-Token` for the first half of its lifetime.
    pub token_reuse: bool,
    /// headers mode: forward paths with `;` (path parameters) instead of refusing them.
    pub allow_path_parameters: bool,
    /// headers mode: where requests go, and how long to wait.
    pub upstream: Option<Url>,
    /// The upstream's origin and path without a trailing slash, which each forwarded
    /// request's own path and query follow ("" without an upstream).
    pub upstream_prefix: String,
    /// Extra CA certificates (DER) for an https upstream, besides the system roots.
    pub upstream_ca: Vec<Vec<u8>>,
    pub connect_timeout: Duration,
    pub upstream_timeout: Duration,
    pub header_names: HeaderNames,
    pub claims: Vec<(String, String)>,
    pub organization: Option<OrganizationSection>,
    pub contacts: Vec<ContactSection>,
    /// True when the app's base URL is https (`__Host-` Secure cookies, SameSite=None).
    pub secure: bool,
    /// The session cookie's name, made once by `http::session` (it is asked per request).
    pub session_cookie: std::sync::OnceLock<String>,
}

impl App {
    /// `{base path}/saml2/{federation}`: every SAML route of this app lives below it.
    pub fn saml_path(&self) -> String {
        format!("{}/saml2/{}", self.path_prefix, self.federation.name)
    }

    /// Absolute URL of one of this app's SAML routes.
    pub fn route_url(&self, route: &str) -> String {
        let mut url = self.base_url.clone();
        url.set_path(&format!("{}/{}", self.saml_path(), route));
        url.to_string()
    }

    /// Attributes this app reads, for the SP metadata's RequestedAttributes.
    pub fn used_attributes(&self) -> Vec<String> {
        let mut names = vec![
            self.person_attribute.clone(),
            "nlEduPersonHomeOrganizationId".to_string(),
            "eduPersonAffiliation".to_string(),
        ];
        names.extend(self.claims.iter().map(|(_, a)| a.clone()));
        let mut seen = std::collections::BTreeSet::new();
        names.retain(|n| seen.insert(n.clone()));
        names
    }
}

pub(super) fn parse_duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value).map_err(|e| format!("{value:?} is not a duration like \"90s\" or \"8h\": {e}"))
}

pub(super) fn resolve(base: &Path, value: &str) -> PathBuf {
    let p = Path::new(value);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Extracts one section, reporting serde problems (unknown keys, wrong types) by key path.
fn section<T: DeserializeOwned>(figment: &Figment, key: &str, c: &mut Collector<'_>) -> Option<T> {
    match figment.extract_inner::<T>(key) {
        Ok(v) => Some(v),
        Err(errors) => {
            for e in errors {
                let mut path = vec![key.to_string()];
                path.extend(e.path.iter().cloned());
                let message = match &e.kind {
                    figment::error::Kind::UnknownField(field, _) => {
                        path.push(field.clone());
                        "unknown key".to_string()
                    }
                    figment::error::Kind::MissingField(field) => {
                        path.push(field.to_string());
                        "missing required key".to_string()
                    }
                    other => other.to_string(),
                };
                c.add(path.join("."), message);
            }
            None
        }
    }
}

pub(super) fn build(
    figment: &Figment,
    text: &str,
    file: Option<&Path>,
    base: &Path,
    app_files: &[super::problems::AppFile],
) -> Result<Settings, ConfigErrors> {
    let mut c = Collector::with_app_files(file, text, app_files);
    let data = match figment.data() {
        Ok(d) => d,
        Err(e) => {
            c.add("(file)", format!("not valid TOML: {e}"));
            return Err(ConfigErrors(c.problems));
        }
    };
    let dict = data.values().next().cloned().unwrap_or_default();
    for key in dict.keys() {
        if !["server", "sessions", "links", "keys", "federations", "apps", "log"].contains(&key.as_str()) {
            c.add(key.clone(), "unknown section");
        }
    }
    let has = |k: &str| dict.contains_key(k);
    let server: ServerSection = if has("server") {
        section(figment, "server", &mut c).unwrap_or_default()
    } else {
        ServerSection::default()
    };
    let sessions: SessionsSection = if has("sessions") {
        section(figment, "sessions", &mut c).unwrap_or_default()
    } else {
        SessionsSection::default()
    };
    let log: LogSection = if has("log") {
        section(figment, "log", &mut c).unwrap_or_default()
    } else {
        LogSection::default()
    };
    let log_format = match log.format.as_str() {
        "text" => Some(LogFormat::Text),
        "json" => Some(LogFormat::Json),
        other => {
            c.add("log.format", format!("{other:?} is not one of \"text\", \"json\""));
            None
        }
    };
    let links_section: LinksSection = if has("links") {
        section(figment, "links", &mut c).unwrap_or_default()
    } else {
        LinksSection::default()
    };
    let keys: Option<KeysSection> = if has("keys") {
        section(figment, "keys", &mut c)
    } else {
        c.add(
            "keys.jwt_signing_key",
            "missing required key (run `entree-bridge keygen` to make one)",
        );
        None
    };

    let links = match links_section.store.as_str() {
        "sqlite" => Some(LinksTarget::Sqlite(resolve(base, &links_section.sqlite_path))),
        "postgres"
            if links_section.postgres_url.starts_with("postgres://")
                || links_section.postgres_url.starts_with("postgresql://") =>
        {
            Some(LinksTarget::Postgres(links_section.postgres_url.clone()))
        }
        "postgres" => {
            c.add(
                "links.postgres_url",
                "required with store = \"postgres\": postgres://user@host/database",
            );
            None
        }
        other => {
            c.add(
                "links.store",
                format!("{other:?} is not one of \"sqlite\", \"postgres\""),
            );
            None
        }
    };
    let listen = c.take(
        "server.listen",
        server
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| format!("{:?} is not host:port: {e}", server.listen)),
    );
    let public_base_url = if server.public_base_url.is_empty() {
        c.add(
            "server.public_base_url",
            "missing required key (the bridge's public URL, e.g. https://bridge.example.nl)",
        );
        None
    } else {
        c.take("server.public_base_url", parse_http_url(&server.public_base_url))
    };
    let session_lifetime = c.take("sessions.lifetime", parse_duration(&sessions.lifetime));
    let session_idle = c.take("sessions.idle_timeout", parse_duration(&sessions.idle_timeout));
    let session_timeout = c.take("sessions.timeout", parse_duration(&sessions.timeout));
    let session_store = super::stores::build_sessions(&sessions, session_timeout, session_idle, base, &mut c);
    let links_timeout = c.take("links.timeout", parse_duration(&links_section.timeout));
    let tls = match (server.tls_cert.is_empty(), server.tls_key.is_empty()) {
        (true, true) => Some(None),
        (false, false) => c
            .take(
                "server.tls_cert",
                server_tls(&resolve(base, &server.tls_cert), &resolve(base, &server.tls_key)),
            )
            .map(Some),
        _ => {
            c.add("server.tls_cert", "server.tls_cert and server.tls_key go together");
            None
        }
    };
    let trusted_proxies: Vec<Cidr> = server
        .trusted_proxies
        .iter()
        .filter_map(|t| c.take("server.trusted_proxies", t.parse::<Cidr>()))
        .collect();
    let rate_limit = RateLimit {
        per_minute: server.rate_limit.per_minute,
        burst: server.rate_limit.burst,
        exempt_loopback: server.rate_limit.exempt_loopback,
    };
    // Above the cap of all connections (10,000) it simply never binds: no error.
    let max_connections_per_client = server.max_connections_per_client;
    if rate_limit.per_minute > 0 && rate_limit.burst == 0 {
        c.add(
            "server.rate_limit.burst",
            "must be at least 1 while per_minute is set (0 would refuse everyone)",
        );
    }

    // Files that hold secrets, by the key that names them: each must be the owner's alone.
    let mut secret_files: Vec<(String, PathBuf)> = Vec::new();
    if !server.tls_key.is_empty() {
        secret_files.push(("server.tls_key".into(), resolve(base, &server.tls_key)));
    }
    if let Some(k) = &keys {
        for p in k.jwt_signing_key.to_vec() {
            secret_files.push(("keys.jwt_signing_key".into(), resolve(base, &p)));
        }
    }
    let jwt_keys = keys.and_then(|k| {
        let paths: Vec<PathBuf> = k.jwt_signing_key.to_vec().iter().map(|p| resolve(base, p)).collect();
        if paths.is_empty() {
            c.add("keys.jwt_signing_key", "lists no key");
            return None;
        }
        c.take("keys.jwt_signing_key", SigningKeys::load(&paths))
    });

    let mut federations = BTreeMap::new();
    let fed_names: Vec<String> = dict
        .get("federations")
        .and_then(|v| v.as_dict())
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default();
    for name in fed_names {
        let key = format!("federations.{name}");
        if !valid_name(&name) {
            c.add(
                &key,
                "names may use a-z, 0-9, - and _ only (the name is a URL path segment)",
            );
            continue;
        }
        let Some(f) = section::<FederationSection>(figment, &key, &mut c) else {
            continue;
        };
        if let Some(fed) = build_federation(&name, &f, base, &mut c) {
            federations.insert(name, Arc::new(fed));
        }
    }

    let mut apps = Vec::new();
    let app_names: Vec<String> = dict
        .get("apps")
        .and_then(|v| v.as_dict())
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default();
    if app_names.is_empty() {
        c.add("apps", "no app is configured");
    }
    for name in app_names {
        let key = format!("apps.{name}");
        if !valid_name(&name) {
            c.add(
                &key,
                "names may use a-z, 0-9, - and _ only (the name is the JWT audience)",
            );
            continue;
        }
        let Some(a) = section::<AppSection>(figment, &key, &mut c) else {
            continue;
        };
        secret_files.push((format!("{key}.sp_key"), resolve(base, &a.sp_key)));
        if let Some(next) = &a.sp_key_next {
            secret_files.push((format!("{key}.sp_key_next"), resolve(base, next)));
        }
        if a.person.link_secret.is_some() {
            // The secret is in the config text itself: the file that holds it.
            let holder = app_files
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.path.clone())
                .or_else(|| file.map(Path::to_path_buf));
            if let Some(holder) = holder {
                secret_files.push((format!("{key}.person.link_secret"), holder));
            }
        }
        if let Some(app) = build_app(&name, a, &federations, base, &mut c) {
            apps.push(Arc::new(app));
        }
    }
    check_unique_routes(&apps, &mut c);
    let mut warnings: Vec<String> = secret_files
        .iter()
        .filter_map(|(key, path)| {
            crate::keys::readable_by_others(path).map(|mode| {
                format!(
                    "{key}: {} can be read or written by other users (mode {mode:o}) and holds a secret; chmod 600 it",
                    path.display()
                )
            })
        })
        .collect();
    warnings.extend(federations.values().filter_map(|f| valid_until_warning(f)));

    match (
        c.problems.is_empty(),
        listen,
        public_base_url,
        jwt_keys,
        links,
        session_store,
        links_timeout,
        log_format,
        tls,
    ) {
        (
            true,
            Some(listen),
            Some(public_base_url),
            Some(jwt_keys),
            Some(links),
            Some(session_store),
            Some(links_timeout),
            Some(log_format),
            Some(tls),
        ) => Ok(Settings {
            log_format,
            tls,
            source: file.map(Path::to_path_buf),
            listen,
            public_base_url,
            session_store,
            links_timeout,
            session_lifetime: session_lifetime.unwrap_or_default(),
            session_idle: session_idle.unwrap_or_default(),
            trusted_proxies,
            rate_limit,
            max_connections_per_client,
            warnings,
            links,
            pseudonyms: crate::identity::Pseudonyms::new(&jwt_keys.pseudonym_secret()),
            jwt_keys,
            federations,
            apps,
        }),
        _ => Err(ConfigErrors(c.problems)),
    }
}

/// The certificates of a PEM CA file, as DER.
fn read_ca_file(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs: Vec<Vec<u8>> = rustls_pemfile::certs(&mut pem.as_slice())
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn parse_http_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("{value:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{value:?} must be an http(s) URL with a host"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{value:?} must not carry user info, a query or a fragment"));
    }
    Ok(url)
}

fn build_federation(name: &str, f: &FederationSection, base: &Path, c: &mut Collector<'_>) -> Option<Federation> {
    let key = format!("federations.{name}");
    let clock_skew = c.take(&format!("{key}.clock_skew"), parse_duration(&f.clock_skew));
    let refresh_interval = c.take(&format!("{key}.refresh_interval"), parse_duration(&f.refresh_interval));
    if refresh_interval.is_some_and(|r| r < Duration::from_secs(1)) {
        c.add(format!("{key}.refresh_interval"), "must be at least 1s");
    }
    let refresh_timeout = c.take(&format!("{key}.refresh_timeout"), parse_duration(&f.refresh_timeout));
    if refresh_timeout.is_some_and(|t| t < Duration::from_secs(1) || t > Duration::from_secs(600)) {
        c.add(format!("{key}.refresh_timeout"), "must be between 1s and 10m");
    }
    let signing_certs = f.metadata_signing_cert.as_ref().and_then(|p| {
        let path = resolve(base, p);
        c.take(&format!("{key}.metadata_signing_cert"), read_pem_certificates(&path))
    });
    let wanted = f.idp_entity_id.as_deref();
    if f.metadata.starts_with("http://") || f.metadata.starts_with("https://") {
        let url = c.take(
            &format!("{key}.metadata"),
            Url::parse(&f.metadata).map_err(|e| format!("{:?} is not a URL: {e}", f.metadata)),
        );
        if f.metadata_signing_cert.is_none() {
            c.add(
                format!("{key}.metadata_signing_cert"),
                "required with a metadata URL: the PEM certificate(s) the federation signs its metadata with \
                 (the signature, not the transport, is the trust)",
            );
        }
        let cache = resolve(
            base,
            f.metadata_cache
                .as_deref()
                .unwrap_or(&format!("data/metadata-{name}.xml")),
        );
        let (url, signing_certs, refresh_interval, refresh_timeout) =
            (url?, signing_certs?, refresh_interval?, refresh_timeout?);
        let idp = idp_metadata::load_cached(&cache, &signing_certs, wanted).filter(|idp| {
            // A copy kept while require_valid_until was false is not trusted once it is true.
            idp.valid_until.is_some() || !f.require_valid_until
        });
        let mut federation = Federation::new(
            name,
            MetadataSource::Url {
                url,
                signing_certs,
                cache,
                refresh_interval,
                refresh_timeout,
            },
            idp,
            f.idp_entity_id.clone(),
            f.allow_sha1,
            clock_skew?,
        );
        federation.allow_cbc = f.allow_cbc;
        federation.require_valid_until = f.require_valid_until;
        return Some(federation);
    }
    let path = resolve(base, &f.metadata);
    let text = c.take(
        &format!("{key}.metadata"),
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display())),
    )?;
    // With a signing certificate a file must be signed by it too; without, the admin who put
    // the file there vouches for it.
    let parsed = match &signing_certs {
        Some(certs) => idp_metadata::verify_and_parse(&text, certs, wanted).map(|(idp, _)| idp),
        None => idp_metadata::parse(&text, wanted),
    };
    let idp = c.take(
        &format!("{key}.metadata"),
        parsed.map_err(|e| format!("{}: {e}", path.display())),
    )?;
    if let Some(until) = idp.valid_until.filter(|u| *u <= chrono::Utc::now()) {
        c.add(
            format!("{key}.metadata"),
            format!(
                "{}: expired at {until} (validUntil); get a fresh copy from the federation",
                path.display()
            ),
        );
    }
    let mut federation = Federation::new(
        name,
        MetadataSource::File(path),
        Some(idp),
        f.idp_entity_id.clone(),
        f.allow_sha1,
        clock_skew?,
    );
    federation.allow_cbc = f.allow_cbc;
    // A file is the admin's own copy, refreshed by hand: validUntil is honoured when present
    // and never required, so the key only matters for a URL.
    federation.require_valid_until = f.require_valid_until;
    Some(federation)
}

/// What `check-config` and the start say about validUntil of URL metadata: that it is not
/// required (`require_valid_until = false`: the signature and `refresh_interval` alone decide),
/// or, when it is, that the copy kept on disk has none and is not used.
fn valid_until_warning(f: &Federation) -> Option<String> {
    let MetadataSource::Url {
        cache,
        refresh_interval,
        ..
    } = &f.source
    else {
        return None;
    };
    if !f.require_valid_until {
        return Some(format!(
            "federations.{}.require_valid_until = false: metadata from the URL without validUntil is trusted \
             on its signature alone and refreshed every {}; a copy that stops being refreshed never expires",
            f.name,
            humantime::format_duration(*refresh_interval)
        ));
    }
    let kept_without_end =
        f.last_known().is_none() && std::fs::read_to_string(cache).is_ok_and(|text| !text.contains("validUntil"));
    kept_without_end.then(|| {
        format!(
            "federations.{}: the kept copy {} has no validUntil, which require_valid_until = true refuses; \
             the federation must publish validUntil, or set federations.{}.require_valid_until = false",
            f.name,
            cache.display(),
            f.name
        )
    })
}

/// The rustls server config for `server.tls_cert`/`server.tls_key` (HTTP/1.1, TLS 1.2 and 1.3).
fn server_tls(cert_path: &Path, key_path: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let cert_pem = std::fs::read(cert_path).map_err(|e| format!("cannot read {}: {e}", cert_path.display()))?;
    let chain: Vec<rustls::pki_types::CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert_path.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no PEM certificate", cert_path.display()));
    }
    let key_pem =
        std::fs::read(key_path).map_err(|e| format!("server.tls_key: cannot read {}: {e}", key_path.display()))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| format!("server.tls_key: {}: {e}", key_path.display()))?
        .ok_or_else(|| format!("server.tls_key: {} holds no PEM private key", key_path.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and server.tls_key do not make a pair: {e}"))?;
    // HTTP/1.1 only: the proxy path relies on its upgrade semantics (WebSockets).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Every certificate of a PEM file, as DER.
fn read_pem_certificates(path: &Path) -> Result<Vec<samael::crypto::CertificateDer>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = X509::stack_from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    certs
        .iter()
        .map(|c| {
            c.to_der()
                .map(samael::crypto::CertificateDer::from)
                .map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect()
}

fn build_app(
    name: &str,
    a: AppSection,
    federations: &BTreeMap<String, Arc<Federation>>,
    base: &Path,
    c: &mut Collector<'_>,
) -> Option<App> {
    let key = |k: &str| format!("apps.{name}.{k}");
    let federation = federations.get(&a.federation).cloned();
    if federation.is_none() {
        c.add(
            key("federation"),
            format!(
                "no [federations.{}] is configured (or it has problems of its own)",
                a.federation
            ),
        );
    }
    let base_url = c.take(&key("base_url"), parse_http_url(&a.base_url));
    let (sp_key, sp_cert) = load_sp_pair(&a.sp_key, &a.sp_cert, (&key("sp_key"), &key("sp_cert")), base, c);
    let sp_next = match (&a.sp_key_next, &a.sp_cert_next) {
        (None, None) => Some(None),
        (Some(k), Some(cert)) => match load_sp_pair(k, cert, (&key("sp_key_next"), &key("sp_cert_next")), base, c) {
            (Some(k), Some(cert)) => Some(Some((k, cert))),
            _ => None,
        },
        _ => {
            c.add(key("sp_key_next"), "sp_key_next and sp_cert_next go together");
            None
        }
    };
    for school in &a.schools {
        let ok = school == "*"
            || ((school.len() == 4 || school.len() == 6) && school.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !ok {
            c.add(
                key("schools"),
                format!("{school:?} is not a BRIN (4 or 6 letters and digits) or \"*\""),
            );
        }
    }
    if a.schools.is_empty() {
        c.add(
            key("schools"),
            "lists no school, so nobody could log in; use [\"*\"] for every school",
        );
    }
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
    if let Some(b) = &base_url {
        allowed_origins.insert(0, b.origin());
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
    if !attributes::is_known(&a.person.attribute) {
        c.add(
            key("person.attribute"),
            format!(
                "{:?} is not a known attribute name (e.g. nlEduPersonRealId, eckId, uid)",
                a.person.attribute
            ),
        );
    }
    let person_pattern = match &a.person.pattern {
        None => None,
        Some(p) => match Regex::new(p) {
            Ok(re) if re.capture_names().any(|n| n == Some("code")) => Some(re),
            Ok(_) => {
                c.add(
                    key("person.pattern"),
                    "must have a named group `code`, e.g. ^(?P<code>[^@]+)@",
                );
                None
            }
            Err(e) => {
                c.add(key("person.pattern"), format!("not a valid regular expression: {e}"));
                None
            }
        },
    };
    let linking = if a.person.linking {
        let url = match &a.person.link_url {
            Some(u) => c.take(
                &key("person.link_url"),
                parse_http_url(u).and_then(|url| {
                    // The link request names the student's school and first name: https only,
                    // except for an app on this machine.
                    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
                    if url.scheme() == "https" || loopback {
                        Ok(url)
                    } else {
                        Err(format!("{u:?} must be https (plain http only for an app on loopback)"))
                    }
                }),
            ),
            None => {
                c.add(
                    key("person.link_url"),
                    "required with linking = true: the app's page where the student logs in once",
                );
                None
            }
        };
        let secret = match &a.person.link_secret {
            Some(s) if s.len() >= 32 => Some(s.as_bytes().to_vec()),
            Some(_) => {
                c.add(
                    key("person.link_secret"),
                    "must be at least 32 characters (it signs link responses; use a random string)",
                );
                None
            }
            None => {
                c.add(
                    key("person.link_secret"),
                    "required with linking = true: the HS256 secret shared with the app",
                );
                None
            }
        };
        url.zip(secret).map(|(url, secret)| Linking { url, secret })
    } else {
        None
    };
    let handoff = match a.handoff.mode.as_str() {
        "jwt" => Some(HandoffMode::Jwt),
        "headers" => Some(HandoffMode::Headers),
        other => {
            c.add(
                key("handoff.mode"),
                format!("{other:?} is not one of \"jwt\", \"headers\""),
            );
            None
        }
    };
    let callback_url = match (&a.handoff.callback_url, handoff) {
        (Some(u), _) => c.take(&key("handoff.callback_url"), parse_http_url(u)),
        (None, Some(HandoffMode::Jwt)) => {
            c.add(
                key("handoff.callback_url"),
                "required in jwt mode: where the app receives the token",
            );
            None
        }
        _ => None,
    };
    let upstream = match (&a.handoff.upstream, handoff) {
        (Some(u), Some(HandoffMode::Headers)) => c.take(&key("handoff.upstream"), parse_http_url(u)),
        (None, Some(HandoffMode::Headers)) => {
            c.add(
                key("handoff.upstream"),
                "required in headers mode: the app's own address, e.g. http://127.0.0.1:9000",
            );
            None
        }
        _ => None,
    };
    let upstream_ca = match &a.handoff.upstream_ca {
        None => Some(Vec::new()),
        Some(p) => c.take(&key("handoff.upstream_ca"), read_ca_file(&resolve(base, p))),
    };
    let connect_timeout = c.take(
        &key("handoff.connect_timeout"),
        parse_duration(&a.handoff.connect_timeout),
    );
    let upstream_timeout = c.take(
        &key("handoff.upstream_timeout"),
        parse_duration(&a.handoff.upstream_timeout),
    );
    let header_names = c.take(&key("handoff.headers"), HeaderNames::from_section(&a.handoff.headers));
    let token_lifetime = c.take(
        &key("handoff.token_lifetime"),
        parse_duration(&a.handoff.token_lifetime),
    );
    for (claim, attribute) in &a.claims {
        if RESERVED_CLAIMS.contains(&claim.as_str()) {
            c.add(
                key(&format!("claims.{claim}")),
                "this claim name is set by the bridge itself",
            );
        }
        if !attributes::is_known(attribute) {
            c.add(
                key(&format!("claims.{claim}")),
                format!("{attribute:?} is not a known attribute name"),
            );
        }
    }
    let sp_entity_id = match (&a.sp_entity_id, &base_url) {
        (Some(id), _) if !id.trim().is_empty() => id.clone(),
        (_, Some(b)) => route(b, &a.federation, "metadata"),
        _ => String::new(),
    };
    let (Some(federation), Some(base_url), Some(sp_key), Some(sp_cert), Some(handoff), Some(token_lifetime)) =
        (federation, base_url, sp_key, sp_cert, handoff, token_lifetime)
    else {
        return None;
    };
    let sp_next = sp_next?;
    let decryption_keys = std::iter::once(sp_key.clone())
        .chain(sp_next.as_ref().map(|(k, _)| k.clone()))
        .collect();
    let (Some(connect_timeout), Some(upstream_timeout), Some(header_names), Some(upstream_ca)) =
        (connect_timeout, upstream_timeout, header_names, upstream_ca)
    else {
        return None;
    };
    let host = match base_url.port() {
        Some(p) => format!("{}:{p}", base_url.host_str().unwrap_or_default()),
        None => base_url.host_str().unwrap_or_default().to_string(),
    }
    .to_ascii_lowercase();
    let path_prefix = base_url.path().trim_end_matches('/').to_string();
    let acs_url = route(&base_url, &federation.name, "acs");
    Some(App {
        name: name.to_string(),
        display_name: a.display_name.clone().unwrap_or_else(|| name.to_string()),
        federation,
        host,
        path_prefix,
        sp_entity_id,
        acs_url,
        sp_key,
        sp_cert,
        sp_next,
        decryption_keys,
        schools: a.schools,
        allowed_origins,
        allow_unsolicited: a.allow_unsolicited,
        post_logout_url,
        tenants: a.tenants,
        person_attribute: a.person.attribute,
        person_pattern,
        linking,
        handoff,
        callback_url,
        token_lifetime,
        token_reuse: a.handoff.token_reuse,
        allow_path_parameters: a.handoff.allow_path_parameters,
        upstream_prefix: upstream
            .as_ref()
            .map(|u| format!("{}{}", u.origin().ascii_serialization(), u.path().trim_end_matches('/')))
            .unwrap_or_default(),
        upstream,
        upstream_ca,
        connect_timeout,
        upstream_timeout,
        header_names,
        claims: a.claims.into_iter().collect(),
        organization: a.organization,
        contacts: a.contacts,
        secure: base_url.scheme() == "https",
        session_cookie: std::sync::OnceLock::new(),
        base_url,
    })
}

/// An SP key pair: an RSA key and the certificate that belongs to it.
fn load_sp_pair(
    key_path: &str,
    cert_path: &str,
    (key_name, cert_name): (&str, &str),
    base: &Path,
    c: &mut Collector<'_>,
) -> (Option<PKey<Private>>, Option<X509>) {
    let sp_key = c.take(key_name, crate::keys::read_private_key(&resolve(base, key_path)));
    let sp_cert = c.take(cert_name, crate::keys::read_certificate(&resolve(base, cert_path)));
    if let (Some(k), Some(cert)) = (&sp_key, &sp_cert) {
        let matches = cert.public_key().map(|p| p.public_eq(k)).unwrap_or(false);
        if !matches {
            c.add(
                cert_name,
                format!(
                    "the certificate does not belong to {}",
                    key_name.rsplit('.').next().unwrap_or(key_name)
                ),
            );
        }
        if k.rsa().is_err() {
            c.add(
                key_name,
                "must be an RSA key (SAML request signing and decryption use RSA)",
            );
        }
    }
    (sp_key, sp_cert)
}

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
];

fn route(base: &Url, federation: &str, action: &str) -> String {
    let mut url = base.clone();
    url.set_path(&format!(
        "{}/saml2/{federation}/{action}",
        base.path().trim_end_matches('/')
    ));
    url.to_string()
}

fn check_unique_routes(apps: &[Arc<App>], c: &mut Collector<'_>) {
    for (i, a) in apps.iter().enumerate() {
        for b in &apps[i + 1..] {
            if a.host == b.host && a.saml_path() == b.saml_path() {
                c.add(
                    format!("apps.{}.base_url", b.name),
                    format!(
                        "serves the same routes as apps.{} (same host, path and federation)",
                        a.name
                    ),
                );
            }
            if a.sp_entity_id == b.sp_entity_id {
                c.add(
                    format!("apps.{}.sp_entity_id", b.name),
                    format!("is the same as apps.{}'s; each app is its own SP entity", a.name),
                );
            }
        }
    }
}

impl Settings {
    /// One line per item, for `check-config`.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "config OK: listen {}, public URL {}, sessions {}, links {}, {} JWT key(s)\n",
            self.listen,
            self.public_base_url,
            self.session_store,
            match &self.links {
                LinksTarget::Sqlite(p) => format!("sqlite {}", p.display()),
                LinksTarget::Postgres(_) => "postgres".to_string(),
            },
            self.jwt_keys.len()
        );
        for f in self.federations.values() {
            let source = match &f.source {
                MetadataSource::File(p) => format!("file {}", p.display()),
                MetadataSource::Url { url, .. } => format!("URL {}", super::stores::redacted(url.as_str())),
            };
            match f.last_known() {
                Some(idp) => out.push_str(&format!(
                    "federation {}: IdP {} ({} signing certificate(s), SSO {}{}) from {source}\n",
                    f.name,
                    idp.entity_id,
                    idp.signing_certs.len(),
                    idp.sso_redirect_url,
                    if idp.want_authn_requests_signed {
                        ", wants signed requests"
                    } else {
                        ""
                    }
                )),
                None => out.push_str(&format!(
                    "federation {}: no IdP metadata yet; it will be fetched from {source}\n",
                    f.name
                )),
            }
        }
        for a in &self.apps {
            out.push_str(&format!(
                "app {}: {} -> SP {} (login {}), person code from {}{}, schools {}\n",
                a.name,
                a.base_url,
                a.sp_entity_id,
                a.route_url("login"),
                a.person_attribute,
                match (a.person_pattern.is_some(), &a.linking) {
                    (_, Some(l)) => format!(" + first-time linking at {}", l.url),
                    (true, None) => " + pattern".to_string(),
                    (false, None) => String::new(),
                },
                a.schools.join(",")
            ));
        }
        out
    }
}
