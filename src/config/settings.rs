//! From the raw file to [`Settings`]: every section checked by its own module, every key and
//! certificate loaded, every IdP metadata file read. Problems are collected, not returned at
//! the first.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use figment::{Figment, Provider};
use url::Url;

use super::admin::{self, AdminSection, AdminSettings};
use super::apps::{self, App};
use super::federations::{self, Federation};
use super::file::*;
use super::keys::{self, SecretFiles};
use super::parse::{parse_duration, resolve, section, valid_name};
use super::problems::{AppFile, Collector, ConfigErrors};
use super::server::{self, Cidr, RateLimit};
use super::stores;
use super::support::{self, SupportSection, SupportSettings};
use crate::handoff::jwt::SigningKeys;
use crate::store::{LinksTarget, SessionBackend};

/// The validated, loaded configuration the server runs on.
#[derive(Debug)]
pub struct Settings {
    pub source: Option<PathBuf>,
    pub listen: SocketAddr,
    pub public_base_url: Url,
    pub session_store: SessionBackend,
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
    /// `[support]`: how failure reports are kept.
    pub support: SupportSettings,
    /// `[admin]`: the support desk's listener; `None`: there is none.
    pub admin: Option<AdminSettings>,
}

/// How log lines are written (`log.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

const SECTIONS: &[&str] = &[
    "server",
    "sessions",
    "links",
    "keys",
    "federations",
    "apps",
    "log",
    "support",
    "admin",
];

pub(super) fn build(
    figment: &Figment,
    text: &str,
    file: Option<&Path>,
    base: &Path,
    app_files: &[AppFile],
) -> Result<Settings, ConfigErrors> {
    let mut c = Collector::with_app_files(file, text, app_files).with_sources(figment);
    let data = match figment.data() {
        Ok(d) => d,
        Err(e) => {
            c.add("(file)", format!("not valid TOML: {e}"));
            return Err(ConfigErrors(c.problems));
        }
    };
    let dict = data.values().next().cloned().unwrap_or_default();
    for key in dict.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            let message = match super::parse::did_you_mean(key, SECTIONS) {
                Some(near) => format!("unknown section (did you mean [{near}]?)"),
                None => format!("unknown section (the sections are {})", SECTIONS.join(", ")),
            };
            c.add(key.clone(), message);
        }
    }
    let has = |k: &str| dict.contains_key(k);
    let server_section: ServerSection = if has("server") {
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
    let keys_section: Option<KeysSection> = if has("keys") {
        section(figment, "keys", &mut c)
    } else {
        c.add(
            "keys.jwt_signing_key",
            "missing required key (run `entree-bridge keygen` to make one)",
        );
        None
    };

    let support_section: SupportSection = if has("support") {
        section(figment, "support", &mut c).unwrap_or_default()
    } else {
        SupportSection::default()
    };
    let support = support::build_support(&support_section, &mut c);

    let links = stores::build_links(&links_section, base, &mut c);
    let server = server::build_server(&server_section, base, &mut c);
    let session_lifetime = c.take("sessions.lifetime", parse_duration(&sessions.lifetime));
    let session_idle = c.take("sessions.idle_timeout", parse_duration(&sessions.idle_timeout));
    let session_timeout = c.take("sessions.timeout", parse_duration(&sessions.timeout));
    let session_store = stores::build_sessions(&sessions, session_timeout, session_idle, base, &mut c);
    let links_timeout = c.take("links.timeout", parse_duration(&links_section.timeout));

    let mut secret_files = SecretFiles::default();
    if !server_section.tls_key.is_empty() {
        secret_files.add("server.tls_key", resolve(base, &server_section.tls_key));
    }
    if let Some(k) = &keys_section {
        for p in k.jwt_signing_key.to_vec() {
            secret_files.add("keys.jwt_signing_key", resolve(base, &p));
        }
    }
    let jwt_keys = keys::build_jwt_keys(keys_section.as_ref(), base, &mut c);

    let federations = build_federations(figment, &dict, base, &mut c);
    let apps = build_apps(
        figment,
        &dict,
        &federations,
        base,
        file,
        app_files,
        &mut secret_files,
        &mut c,
    );
    apps::check_oidc_apps(&apps, server.public_base_url.as_ref(), jwt_keys.as_ref(), &mut c);
    let mut warnings = secret_files.warnings();
    warnings.extend(federations.values().filter_map(|f| federations::valid_until_warning(f)));
    let admin = if has("admin") {
        section::<AdminSection>(figment, "admin", &mut c)
            .and_then(|a| admin::build_admin(&a, server.listen, base, &mut c, &mut warnings))
    } else {
        None
    };

    let server::Server {
        listen,
        public_base_url,
        tls,
        trusted_proxies,
        rate_limit,
        max_connections_per_client,
    } = server;
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
        support,
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
            Some(support),
        ) => Ok(Settings {
            support,
            admin,
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

/// The names under a table (`federations`, `apps`), as the file (and its app files) list them.
fn names_under(dict: &figment::value::Dict, table: &str) -> Vec<String> {
    dict.get(table)
        .and_then(|v| v.as_dict())
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default()
}

fn build_federations(
    figment: &Figment,
    dict: &figment::value::Dict,
    base: &Path,
    c: &mut Collector<'_>,
) -> BTreeMap<String, Arc<Federation>> {
    let mut federations = BTreeMap::new();
    for name in names_under(dict, "federations") {
        let key = format!("federations.{name}");
        if !valid_name(&name) {
            c.add(
                &key,
                "names may use a-z, 0-9, - and _ only (the name is a URL path segment)",
            );
            continue;
        }
        let Some(f) = section::<FederationSection>(figment, &key, c) else {
            continue;
        };
        if let Some(fed) = federations::build_federation(&name, &f, base, c) {
            federations.insert(name, Arc::new(fed));
        }
    }
    federations
}

/// Why an app's federation is not there: not configured (naming those that are), or
/// configured with problems of its own, which are listed under its keys.
fn missing_federation(name: &str, configured: &[String]) -> String {
    if configured.iter().any(|c| c == name) {
        return format!(
            "[federations.{name}] has problems of its own (see its keys); the app cannot log in until they are fixed"
        );
    }
    match configured {
        [] => format!("no [federations.{name}] is configured (there is no [federations.X] at all)"),
        some => format!(
            "no [federations.{name}] is configured (configured: {})",
            some.join(", ")
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn build_apps(
    figment: &Figment,
    dict: &figment::value::Dict,
    federations: &BTreeMap<String, Arc<Federation>>,
    base: &Path,
    file: Option<&Path>,
    app_files: &[AppFile],
    secret_files: &mut SecretFiles,
    c: &mut Collector<'_>,
) -> Vec<Arc<App>> {
    let mut apps = Vec::new();
    let app_names = names_under(dict, "apps");
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
        let Some(a) = section::<AppSection>(figment, &key, c) else {
            continue;
        };
        secret_files.add(format!("{key}.sp_key"), resolve(base, &a.sp_key));
        if let Some(next) = &a.sp_key_next {
            secret_files.add(format!("{key}.sp_key_next"), resolve(base, next));
        }
        if a.person.link_secret.is_some() {
            // The secret is in the config text itself: the file that holds it.
            let holder = app_files
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.path.clone())
                .or_else(|| file.map(Path::to_path_buf));
            if let Some(holder) = holder {
                secret_files.add(format!("{key}.person.link_secret"), holder);
            }
        }
        if !federations.contains_key(&a.federation) {
            c.add(
                format!("{key}.federation"),
                missing_federation(&a.federation, &names_under(dict, "federations")),
            );
        }
        if let Some(app) = apps::build_app(&name, a, federations, base, c) {
            apps.push(Arc::new(app));
        }
    }
    apps::check_unique_routes(&apps, c);
    apps
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
            out.push_str(&federations::summary_line(f));
        }
        for a in &self.apps {
            out.push_str(&format!(
                "app {}: {} -> SP {} (login {}), person code from {}{}, schools {}\n",
                a.name,
                a.base_url,
                a.sp.entity_id,
                a.route_url("login"),
                a.identity.person_attribute,
                match (a.identity.person_pattern.is_some(), &a.identity.linking) {
                    (_, Some(l)) => format!(" + first-time linking at {}", l.url),
                    (true, None) => " + pattern".to_string(),
                    (false, None) => String::new(),
                },
                if a.identity.schools.is_empty() {
                    "activated in the database only".to_string()
                } else {
                    a.identity.schools.join(",")
                }
            ));
        }
        out
    }
}
