//! The admin tokens in force: `admin.token_file`, read again whenever it changes (size,
//! modification time or inode), so a token removed from the file stops working at once,
//! without a reload. A file that cannot be read or holds no valid token lets nobody in.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::keys::AdminTokens;

/// What identifies one version of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    path: PathBuf,
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp_of(path: &Path) -> std::io::Result<Stamp> {
    // Unix only, like the permission check of `keys::readable_by_others`.
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    Ok(Stamp {
        path: path.to_path_buf(),
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
    })
}

/// Why nobody can sign in right now.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the admin token file cannot be used: {0}")]
pub struct TokenFileError(String);

/// The file's last version seen (`None`: it could not be looked at) and what it held.
type Seen = (Option<Stamp>, Result<Arc<AdminTokens>, TokenFileError>);

#[derive(Default)]
pub struct TokenFile {
    loaded: Mutex<Option<Seen>>,
}

impl TokenFile {
    /// The tokens `path` holds now. Looking costs one `stat`; the file is read only when it
    /// changed. Each change is logged once (and a file others can read, warned about).
    pub fn current(&self, path: &Path) -> Result<Arc<AdminTokens>, TokenFileError> {
        let stamp = stamp_of(path).ok();
        // A poisoned lock only means a thread panicked mid-update: the cached tokens are whole.
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, tokens)) = loaded.as_ref() {
            if *seen == stamp && (stamp.is_some() || tokens.is_err()) {
                return tokens.clone();
            }
        }
        let tokens = match &stamp {
            Some(_) => AdminTokens::read(path).map(Arc::new).map_err(TokenFileError),
            None => Err(TokenFileError(format!("{} cannot be looked at", path.display()))),
        };
        match &tokens {
            Ok(t) => {
                tracing::info!(file = %path.display(), tokens = t.names().count(), "admin tokens (re)read");
                if let Some(mode) = crate::keys::readable_by_others(path) {
                    tracing::warn!(
                        file = %path.display(),
                        "admin.token_file can be read or written by other users (mode {mode:o}); chmod 600 it"
                    );
                }
            }
            Err(e) => tracing::error!(file = %path.display(), "{e}: nobody can sign in until it is fixed"),
        }
        *loaded = Some((stamp, tokens.clone()));
        tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANNA: &str = "anna-0123456789abcdef0123456789abcdef";
    const BOB: &str = "bob-0123456789abcdef0123456789abcdef0";

    #[test]
    fn a_removed_token_stops_working_without_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, format!("anna {ANNA}\nbob {BOB}\n")).unwrap();
        let file = TokenFile::default();
        let tokens = file.current(&path).unwrap();
        assert_eq!(tokens.name_of(BOB), Some("bob"));
        // Bob's token revoked: the file is shorter, so the change is seen at once even
        // within the file system's timestamp granularity.
        std::fs::write(&path, format!("anna {ANNA}\n")).unwrap();
        let tokens = file.current(&path).unwrap();
        assert_eq!(tokens.name_of(BOB), None);
        assert_eq!(tokens.name_of(ANNA), Some("anna"));
        // Gone or broken: nobody is let in (fail closed), and it recovers when fixed.
        std::fs::remove_file(&path).unwrap();
        assert!(file.current(&path).is_err());
        std::fs::write(&path, "short\n").unwrap();
        assert!(file.current(&path).is_err());
        std::fs::write(&path, format!("anna {ANNA}\n")).unwrap();
        assert_eq!(file.current(&path).unwrap().name_of(ANNA), Some("anna"));
    }
}
