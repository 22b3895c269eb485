//! Configuration: figment loading (TOML + `ENTREE_BRIDGE_SECTION__KEY` env overrides), typed
//! and validated into [`Settings`], with every problem named by key path and file.

mod file;
mod problems;
mod stores;
mod validate;

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;

pub use file::*;
pub use problems::{ConfigErrors, Problem};
pub use stores::{redacted, RedisNodes, RedisSettings, SessionBackend, DEFAULT_PENDING_BUDGET, MAX_LOCAL_CACHE};
pub use validate::*;

/// Environment variables with this prefix override config keys: `ENTREE_BRIDGE_SERVER__LISTEN`.
pub const ENV_PREFIX: &str = "ENTREE_BRIDGE_";

/// Loads and validates the config file at `path`. Relative paths inside it resolve against
/// the file's folder.
pub fn load(path: &Path) -> Result<Settings, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![Problem {
            key: "(file)".into(),
            message: format!("cannot read the config file: {e}"),
            file: Some(path.to_path_buf()),
            line: None,
        }])
    })?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    load_text(&text, Some(path), &base)
}

/// Loads config text (the demo's embedded config, tests); `base` resolves relative paths.
pub fn load_text(text: &str, file: Option<&Path>, base: &Path) -> Result<Settings, ConfigErrors> {
    let figment = Figment::from(Toml::string(text)).merge(
        // ENTREE_BRIDGE_CONFIG names the file itself; it is not a key.
        Env::prefixed(ENV_PREFIX).split("__").filter(|k| k.as_str() != "config"),
    );
    validate::build(&figment, text, file, base)
}
