//! Configuration: figment loading (TOML + `ENTREE_BRIDGE_SECTION__KEY` env overrides), typed
//! and validated into [`Settings`], with every problem named by key path and file. The file
//! format lives here and nowhere else: each section is checked by its own module and built
//! into the settings type of the module that uses it (saml's [`SpSettings`] and
//! [`TrustPolicy`], identity's [`Policy`], handoff's [`HandoffSettings`], the stores'
//! [`SessionBackend`] and [`LinksTarget`]), which [`App`] and [`Settings`] put together.
//! Those modules never read the config themselves.
//!
//! [`SpSettings`]: crate::saml::settings::SpSettings
//! [`TrustPolicy`]: crate::saml::settings::TrustPolicy
//! [`Policy`]: crate::identity::Policy
//! [`HandoffSettings`]: crate::handoff::HandoffSettings

mod admin;
mod app_files;
mod apps;
mod federations;
mod file;
mod keys;
mod parse;
mod problems;
pub mod reference;
mod server;
mod settings;
mod stores;
mod support;

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;

/// The stores' settings, as [`load`] builds them (their home is [`crate::store`]).
pub use crate::store::{redacted, LinksTarget, RedisNodes, RedisSettings, SessionBackend, DEFAULT_PENDING_BUDGET};
pub use admin::{AdminSettings, DEFAULT_ADMIN_LISTEN};
pub use apps::{check_contact, App, SESSION_COOKIE_PREFIX};
pub use federations::Federation;
pub use file::*;
pub use parse::{parse_http_url, valid_name};
pub use problems::{AppFile, ConfigErrors, Problem};
pub use server::{Cidr, RateLimit};
pub use settings::{LogFormat, Settings};
pub use stores::MAX_LOCAL_CACHE;

/// Environment variables with this prefix override config keys: `ENTREE_BRIDGE_SERVER__LISTEN`.
pub const ENV_PREFIX: &str = "ENTREE_BRIDGE_";

/// The folder beside the main config file that holds one file per app.
pub const APPS_DIR: &str = "apps";

/// Loads and validates the config file at `path`, with the per-app files in `apps/*.toml`
/// beside it (each file the keys of `[apps.NAME]`, NAME being the file name). Relative paths
/// resolve against the main file's folder.
pub fn load(path: &Path) -> Result<Settings, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![Problem {
            key: "(file)".into(),
            message: format!("cannot read the config file: {e}"),
            file: Some(path.to_path_buf()),
            line: None,
            env: None,
        }])
    })?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let app_files = app_files::read(&base.join(APPS_DIR))?;
    load_with_apps(&text, Some(path), &base, &app_files)
}

/// Loads config text (the demo's embedded config, tests); `base` resolves relative paths.
pub fn load_text(text: &str, file: Option<&Path>, base: &Path) -> Result<Settings, ConfigErrors> {
    load_with_apps(text, file, base, &[])
}

fn load_with_apps(
    text: &str,
    file: Option<&Path>,
    base: &Path,
    app_files: &[AppFile],
) -> Result<Settings, ConfigErrors> {
    let mut figment = Figment::from(Toml::string(text));
    figment = app_files::merge(figment, text, file, app_files)?;
    let figment = figment.merge(
        // ENTREE_BRIDGE_CONFIG names the file itself; it is not a key.
        Env::prefixed(ENV_PREFIX).split("__").filter(|k| k.as_str() != "config"),
    );
    settings::build(&figment, text, file, base, app_files)
}

/// `log.format` of the config at `path` (and `ENTREE_BRIDGE_LOG__FORMAT`), read before the
/// config is loaded so that logging can start first; text when it cannot be read (the load
/// then reports why).
pub fn log_format_of(path: &Path) -> LogFormat {
    let from_env = std::env::var(format!("{ENV_PREFIX}LOG__FORMAT")).ok();
    let from_file = || {
        let text = std::fs::read_to_string(path).ok()?;
        let table: toml::Table = text.parse().ok()?;
        Some(table.get("log")?.get("format")?.as_str()?.to_string())
    };
    match from_env.or_else(from_file).as_deref() {
        Some("json") => LogFormat::Json,
        _ => LogFormat::Text,
    }
}

/// The files a running bridge watches for changes: the main config and its per-app files.
pub fn watched_files(path: &Path) -> Vec<PathBuf> {
    let mut files = vec![path.to_path_buf()];
    if let Some(base) = path.parent() {
        files.extend(app_files::paths(&base.join(APPS_DIR)));
    }
    files
}
