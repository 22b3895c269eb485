//! `[keys]` and the files that hold secrets: the JWT signing keys (and the log pseudonyms'
//! key derived from them), and the warning for every secret file others can read.

use std::path::{Path, PathBuf};

use super::file::KeysSection;
use super::parse::resolve;
use super::problems::Collector;
use crate::handoff::jwt::SigningKeys;

/// The JWT signing keys `keys.jwt_signing_key` names (the first signs).
pub(super) fn build_jwt_keys(keys: Option<&KeysSection>, base: &Path, c: &mut Collector<'_>) -> Option<SigningKeys> {
    let k = keys?;
    let paths: Vec<PathBuf> = k.jwt_signing_key.to_vec().iter().map(|p| resolve(base, p)).collect();
    if paths.is_empty() {
        c.add("keys.jwt_signing_key", "lists no key");
        return None;
    }
    c.take("keys.jwt_signing_key", SigningKeys::load(&paths))
}

/// Files that hold secrets, by the key that names them: each must be the owner's alone.
#[derive(Default)]
pub(super) struct SecretFiles(Vec<(String, PathBuf)>);

impl SecretFiles {
    pub fn add(&mut self, key: impl Into<String>, path: PathBuf) {
        self.0.push((key.into(), path));
    }

    /// One warning per file other users can read or write.
    pub fn warnings(&self) -> Vec<String> {
        self.0
            .iter()
            .filter_map(|(key, path)| {
                crate::keys::readable_by_others(path).map(|mode| {
                    format!(
                        "{key}: {} can be read or written by other users (mode {mode:o}) and holds a secret; chmod 600 it",
                        path.display()
                    )
                })
            })
            .collect()
    }
}
